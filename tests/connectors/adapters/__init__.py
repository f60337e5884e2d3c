"""One adapter per vendor tells the shared contract suite how to drive that vendor's simulator.

Each module here defines `ADAPTER`, an instance of a `tests.connectors.contract.VendorAdapter`
subclass. The contract suite (tests/connectors/test_contract.py) discovers every module in this
package and runs the same tests against each connector.
"""
