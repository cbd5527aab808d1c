"""Stripe's published object fixtures (tests/fixtures/stripe, see its README) as an export folder.

`write_fixture_export(folder, shape)` writes the billing export files of docs/sources.md
(customers, subscriptions, invoices, charges, prices, invoice_lines) from the fixtures of
one shape, made consistent with each other the way a real account's objects are: the
invoice, subscription and charge name the fixture customer, the invoice's line names the
fixture price. The values Stripe's fixture generator filled with placeholders are left
as they are, so the files carry every field a real object carries.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
SHAPES = ("before-2025-03-31", "from-2025-03-31")
KINDS = ("customer", "deleted_customer", "subscription", "invoice", "line_item", "price", "charge")


def fixture(shape: str, kind: str) -> dict:
    """One published fixture object (a fresh copy)."""
    return json.loads((FIXTURES / shape / f"{kind}.json").read_text(encoding="utf-8"))


def fixture_objects(shape: str) -> dict[str, list[dict]]:
    """The export files' objects for one shape, tied to each other by id."""
    customer, price = fixture(shape, "customer"), fixture(shape, "price")
    subscription, invoice = fixture(shape, "subscription"), fixture(shape, "invoice")
    charge, deleted = fixture(shape, "charge"), fixture(shape, "deleted_customer")
    subscription["customer"] = invoice["customer"] = charge["customer"] = customer["id"]
    charge["invoice"] = invoice["id"]
    deleted["id"] = "cus_DeletedFixture1"  # Stripe's copy reuses the customer's id
    new = "parent" in invoice
    if new:
        invoice["parent"] = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription["id"]},
        }
    else:
        invoice["subscription"] = subscription["id"]
    # A second line, left out of the embedded list: it is in invoice_lines.jsonl.
    second = copy.deepcopy(fixture(shape, "line_item"))
    second["invoice"] = invoice["id"]
    for line in (*invoice["lines"]["data"], second):
        if new:
            line["pricing"]["price_details"] = {"price": price["id"], "product": price["product"]}
        else:
            line["price"] = copy.deepcopy(price)
    invoice["lines"]["has_more"] = True
    return {
        "customers": [customer, deleted],
        "subscriptions": [subscription],
        "invoices": [invoice],
        "charges": [charge],
        "prices": [price],
        "invoice_lines": [second],
    }


def write_fixture_export(folder: Path, shape: str) -> dict[str, list[dict]]:
    """Write the export folder of one shape's fixtures; returns the objects per file."""
    objects = fixture_objects(shape)
    folder.mkdir(parents=True, exist_ok=True)
    for name, items in objects.items():
        text = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in items)
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return objects
