"""Billing: a Stripe-compatible REST API or a folder of its JSON Lines exports.

`client.py` is the HTTP transport (paging, retries, back-off), `export.py` reads
the export folder line by line, and `extract.py` turns either into raw-table
batches. Customers, subscriptions and prices are re-read in full each run; invoices and
charges from the look-back start. A copy of an object seen again replaces the
earlier one.
"""

from churnhouse.sources.billing.client import BillingApiClient, BillingApiError, BillingApiRejected
from churnhouse.sources.billing.export import (
    RESOURCES,
    ExportLine,
    iter_export_objects,
    latest_by_id,
)
from churnhouse.sources.billing.extract import (
    CHARGES,
    CUSTOMERS,
    INVOICE_LINES,
    INVOICES,
    PRICES,
    SUBSCRIPTIONS,
    extract,
)

RAW_TABLES = (PRICES, CUSTOMERS, SUBSCRIPTIONS, INVOICES, CHARGES)  # lines: INVOICES' child
LOOKBACK_DAYS = 3  # invoices and charges from the look-back start; the rest in full

__all__ = [
    "CHARGES",
    "CUSTOMERS",
    "INVOICES",
    "INVOICE_LINES",
    "PRICES",
    "LOOKBACK_DAYS",
    "RAW_TABLES",
    "RESOURCES",
    "SUBSCRIPTIONS",
    "BillingApiClient",
    "BillingApiError",
    "BillingApiRejected",
    "ExportLine",
    "extract",
    "iter_export_objects",
    "latest_by_id",
]
