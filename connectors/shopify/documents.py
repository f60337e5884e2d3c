"""Every GraphQL document the connector sends, each with its requested cost (notes §6).

Cost rules: scalars and enums 0, an object 1, a connection `2 + first × (cost of one node)`, a
mutation 10. Costs are written next to the selections they price, so a change to a selection shows
its price in the same diff; tests compare them with the server's `requestedQueryCost`. Selections are
shared as Python strings rather than GraphQL fragments so bulk queries can reuse them verbatim.
"""

from __future__ import annotations

from connectors.shopify.api import Document

NAMESPACE = "espd"
CUSTOMER_PAGE = 250
ORDER_PAGE = 14
ORDER_LINES = 10
MORE_LINES = 100
DEFINITIONS_PAGE = 250
MUTATION_COST = 10

PAGE_INFO = "pageInfo { hasNextPage endCursor }"

# 1 (node) + defaultEmailAddress 1 + defaultAddress 1
CUSTOMER_FIELDS = """id createdAt updatedAt numberOfOrders tags
  defaultEmailAddress { emailAddress marketingState }
  defaultAddress { countryCodeV2 }"""
CUSTOMER_NODE_COST = 3

# 1 (node) + customer 1 + totalPriceSet/shopMoney 2 + totalDiscountsSet/shopMoney 2, lines apart
ORDER_FIELDS = """id name createdAt processedAt updatedAt cancelledAt test email discountCode
  customer { id }
  totalPriceSet { shopMoney { amount currencyCode } }
  totalDiscountsSet { shopMoney { amount } }"""
ORDER_NODE_COST = 6

# 1 (node) + product 1 + originalUnitPriceSet/shopMoney 2 + totalDiscountSet/shopMoney 2
LINE_FIELDS = """id quantity sku
  product { id productType }
  originalUnitPriceSet { shopMoney { amount } }
  totalDiscountSet { shopMoney { amount } }"""
LINE_NODE_COST = 6


def connection_cost(first: int, node_cost: int) -> int:
    return 2 + first * node_cost


CUSTOMERS = Document(
    "Customers",
    f"""query Customers($q: String, $after: String) {{
  customers(first: {CUSTOMER_PAGE}, after: $after, sortKey: UPDATED_AT, query: $q) {{
    {PAGE_INFO}
    nodes {{ {CUSTOMER_FIELDS} }}
  }}
}}""",
    connection_cost(CUSTOMER_PAGE, CUSTOMER_NODE_COST),
)

ORDERS = Document(
    "Orders",
    f"""query Orders($q: String, $after: String) {{
  orders(first: {ORDER_PAGE}, after: $after, sortKey: UPDATED_AT, query: $q) {{
    {PAGE_INFO}
    nodes {{
      {ORDER_FIELDS}
      lineItems(first: {ORDER_LINES}) {{ {PAGE_INFO} nodes {{ {LINE_FIELDS} }} }}
    }}
  }}
}}""",
    connection_cost(ORDER_PAGE, ORDER_NODE_COST + connection_cost(ORDER_LINES, LINE_NODE_COST)),
)

ORDER_LINES_REST = Document(
    "OrderLines",
    f"""query OrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: {MORE_LINES}, after: $after) {{ {PAGE_INFO} nodes {{ {LINE_FIELDS} }} }}
  }}
}}""",
    1 + connection_cost(MORE_LINES, LINE_NODE_COST),
)

ORDERS_COUNT = Document(
    "OrdersCount",
    "query OrdersCount($limit: Int) { ordersCount(limit: $limit) { count precision } }",
    1,
)

ACCESS_SCOPES = Document(
    "AccessScopes", "query AccessScopes { currentAppInstallation { accessScopes { handle } } }", 2
)


def bulk_orders_query(search: str | None) -> str:
    """The bulk export of orders with their line items (children come back with `__parentId`)."""
    argument = f"(query: {_quote(search)}, sortKey: UPDATED_AT)" if search else "(sortKey: UPDATED_AT)"
    return f"""{{ orders{argument} {{ edges {{ node {{
  {ORDER_FIELDS}
  lineItems {{ edges {{ node {{ {LINE_FIELDS} }} }} }}
}} }} }} }}"""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


BULK_RUN = Document(
    "BulkRun",
    """mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message code } }
}""",
    MUTATION_COST,
    mutation=True,
)

BULK_POLL = Document(
    "BulkPoll",
    """query BulkPoll($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url partialDataUrl } }
}""",
    1,
)

DEFINITIONS = Document(
    "Definitions",
    f"""query Definitions($key: String, $after: String) {{
  metafieldDefinitions(first: {DEFINITIONS_PAGE}, after: $after, ownerType: CUSTOMER,
                       namespace: "{NAMESPACE}", key: $key) {{
    {PAGE_INFO}
    nodes {{ id key type {{ name }} }}
  }}
}}""",
    connection_cost(DEFINITIONS_PAGE, 2),
)

DEFINITION_CREATE = Document(
    "DefinitionCreate",
    """mutation DefinitionCreate($definition: MetafieldDefinitionInput!) {
  metafieldDefinitionCreate(definition: $definition) {
    createdDefinition { id key } userErrors { field message code }
  }
}""",
    MUTATION_COST,
    mutation=True,
)

METAFIELDS_SET = Document(
    "MetafieldsSet",
    """mutation MetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) { metafields { key } userErrors { field message code elementIndex } }
}""",
    MUTATION_COST,
    mutation=True,
)

METAFIELDS_DELETE = Document(
    "MetafieldsDelete",
    """mutation MetafieldsDelete($metafields: [MetafieldIdentifierInput!]!) {
  metafieldsDelete(metafields: $metafields) { deletedMetafields { key } userErrors { field message } }
}""",
    MUTATION_COST,
    mutation=True,
)
