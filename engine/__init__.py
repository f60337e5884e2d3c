"""Pure computation: frames in, frames out.

pandas 3 stores `str` columns in PyArrow when it is installed (dask[dataframe] brings it) and in Python
objects otherwise, and the two differ in what some string methods return (lists become arrays). espd is
written and tested against the Python storage, so it is pinned here, for the daemon, the benches and Dask
workers alike (they all import `engine`).
"""

import pandas as pd

pd.set_option("mode.string_storage", "python")
