"""Both Stripe object shapes (before and from API version 2025-03-31), expanded ids,
cut-short line lists and discounts land in one raw form (docs/sources.md, section 2).

The objects are the shape examples of docs/examples written as a real export folder
and read by the real extractor.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path

import pytest
from factories import EXAMPLES

from churnhouse.config import SourceSettings
from churnhouse.contracts import ExtractWindow, RunWindow
from churnhouse.sources.billing import extract

RUN = RunWindow("shapes", datetime(2024, 9, 1), datetime(2024, 11, 1))
COMPARED = (
    "subscription",
    "price_id",
    "product",
    "currency",
    "unit_amount",
    "recurring_interval",
    "recurring_interval_count",
    "quantity",
    "amount",
    "period_start",
    "period_end",
    "proration",
    "line_problem",
)


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


OLD_INVOICE = _example("billing-invoice.json")
NEW_INVOICE = _example("billing-invoice-2025-03-31.json")
PRICE = _example("billing-price.json")
SUBSCRIPTION = _example("billing-subscriptions-page.json")["data"][0]


def _second_line(invoice_id: str) -> dict:
    """The rest of the cut-short list: a seat add-on in the newer shape."""
    line = copy.deepcopy(NEW_INVOICE["lines"]["data"][0])
    line.update(id="il_rest", invoice=invoice_id, quantity=2, amount=3800, discount_amounts=[])
    return line


def _export(folder: Path, **files: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, objects in files.items():
        text = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects)
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return folder


def _extract(folder: Path):
    settings = SourceSettings(
        crm_url="sqlite://", billing_url=str(folder), events_uri="", surveys_uri=""
    )
    extracted = extract(ExtractWindow(RUN, None), settings)
    tables = {batch.table.name: batch.rows.to_pylist() for batch in extracted.batches}
    return tables, extracted.bad


def _line(tables: dict, line_id: str) -> dict:
    (row,) = [row for row in tables["billing_invoice_lines"] if row["line_id"] == line_id]
    return row


def test_old_and_new_shape_of_one_invoice_give_the_same_raw_line(tmp_path):
    old, old_bad = _extract(_export(tmp_path / "old", invoices=[OLD_INVOICE]))
    new, new_bad = _extract(
        _export(
            tmp_path / "new",
            invoices=[NEW_INVOICE],
            prices=[PRICE],
            invoice_lines=[_second_line(NEW_INVOICE["id"])],
        )
    )
    assert old_bad == new_bad == []
    old_line, new_line = _line(old, "il_1A2s3D"), _line(new, "il_1A2s3D")
    assert {k: old_line[k] for k in COMPARED} == {k: new_line[k] for k in COMPARED}
    assert new_line["recurring_interval"] == "month" and new_line["subscription"] == "sub_1Q2w3E4r"
    assert (old_line["discount_amount"], new_line["discount_amount"]) == (0, 2280)
    assert new_line["subscription_item"] == "si_Team01"
    assert old["billing_invoices"][0]["subscription"] == new["billing_invoices"][0]["subscription"]
    assert len(new["billing_invoice_lines"]) == 2  # the embedded line and the rest


def test_one_export_holding_both_shapes_reads_each(tmp_path):
    newer = copy.deepcopy(NEW_INVOICE)
    newer["id"] = "in_after_upgrade"
    newer["lines"]["has_more"] = False
    tables, bad = _extract(
        _export(
            tmp_path, invoices=[OLD_INVOICE, newer], prices=[PRICE], subscriptions=[SUBSCRIPTION]
        )
    )
    assert bad == []
    rows = {row["invoice_id"]: row for row in tables["billing_invoice_lines"]}
    assert rows["in_8I9o0P"]["recurring_interval"] == rows["in_after_upgrade"]["recurring_interval"]
    assert {r["subscription"] for r in tables["billing_invoices"]} == {"sub_1Q2w3E4r"}


def test_a_price_named_only_by_id_resolves_through_the_subscription_items(tmp_path):
    """No prices.jsonl: the subscription's item carries the whole price object."""
    newer = copy.deepcopy(NEW_INVOICE)
    newer["lines"]["has_more"] = False
    tables, _ = _extract(_export(tmp_path, invoices=[newer], subscriptions=[SUBSCRIPTION]))
    line = _line(tables, "il_1A2s3D")
    assert (line["recurring_interval"], line["line_problem"]) == ("month", None)


def test_expanded_objects_are_read_where_ids_are_usual(tmp_path):
    invoice = copy.deepcopy(NEW_INVOICE)
    invoice["lines"]["has_more"] = False
    invoice["customer"] = _example("billing-customer.json")
    details = invoice["parent"]["subscription_details"]
    details["subscription"] = copy.deepcopy(SUBSCRIPTION)
    invoice["lines"]["data"][0]["pricing"]["price_details"]["price"] = PRICE
    charge = _example("billing-charge.json")
    charge["invoice"] = copy.deepcopy(invoice)
    tables, bad = _extract(_export(tmp_path, invoices=[invoice], charges=[charge]))
    assert bad == []
    assert tables["billing_invoices"][0]["customer"] == invoice["customer"]["id"]
    assert tables["billing_invoices"][0]["subscription"] == "sub_1Q2w3E4r"
    assert _line(tables, "il_1A2s3D")["recurring_interval"] == "month"
    assert tables["billing_charges"][0]["invoice"] == invoice["id"]


def test_a_cut_short_list_without_its_remaining_lines_is_bad_input_that_stops_the_night(tmp_path):
    tables, bad = _extract(_export(tmp_path, invoices=[NEW_INVOICE], prices=[PRICE]))
    assert tables["billing_invoices"] == [] and tables["billing_invoice_lines"] == []
    (record,) = bad
    assert record.fails_night and record.location == "invoices: in_8I9o0P"
    assert "has_more" in record.reason and "invoice_lines.jsonl" in record.reason


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda line: line["pricing"]["price_details"].update(price="price_gone"), "price_gone"),
        (lambda line: None, "no recurring interval"),
    ],
    ids=["unknown price", "no recurring interval"],
)
def test_a_line_that_cannot_be_priced_says_why(tmp_path, change, problem):
    invoice = copy.deepcopy(NEW_INVOICE)
    invoice["lines"]["has_more"] = False
    change(invoice["lines"]["data"][0])
    one_off = {**PRICE, "type": "recurring", "recurring": None}
    tables, _ = _extract(_export(tmp_path, invoices=[invoice], prices=[one_off]))
    line = _line(tables, "il_1A2s3D")
    assert problem in line["line_problem"] and "in_8I9o0P" in line["line_problem"]


def test_a_subscription_of_the_newer_shape_takes_its_period_from_the_items(tmp_path):
    newer = copy.deepcopy(SUBSCRIPTION)
    start, end = newer.pop("current_period_start"), newer.pop("current_period_end")
    newer["items"]["data"][0].update(current_period_start=start, current_period_end=end)
    tables, _ = _extract(_export(tmp_path, subscriptions=[SUBSCRIPTION]))
    old_row = tables["billing_subscriptions"][0]
    tables, _ = _extract(_export(tmp_path, subscriptions=[newer]))
    new_row = tables["billing_subscriptions"][0]
    assert (new_row["current_period_start"], new_row["current_period_end"]) == (
        old_row["current_period_start"],
        old_row["current_period_end"],
    )


def test_a_one_time_invoice_item_on_a_subscription_invoice_is_not_mrr_and_not_a_problem(tmp_path):
    """A setup fee: an invoice item of the subscription with a one-time price."""
    invoice = copy.deepcopy(NEW_INVOICE)
    invoice["lines"]["has_more"] = False
    line = invoice["lines"]["data"][0]
    details = line["parent"].pop("subscription_item_details")
    details.pop("subscription_item")
    line["parent"] = {"type": "invoice_item_details", "invoice_item_details": details}
    setup_fee = {**PRICE, "type": "one_time", "recurring": None}
    tables, _ = _extract(_export(tmp_path / "fee", invoices=[invoice], prices=[setup_fee]))
    row = _line(tables, "il_1A2s3D")
    assert (row["recurring_interval"], row["line_problem"], row["price_type"]) == (
        None,
        None,
        "one_time",
    )
    # The same one-time price on a subscription item is a contradiction: it stops the night.
    tables, _ = _extract(
        _export(
            tmp_path / "item",
            invoices=[NEW_INVOICE | {"lines": {**NEW_INVOICE["lines"], "has_more": False}}],
            prices=[setup_fee],
        )
    )
    assert "no recurring interval" in _line(tables, "il_1A2s3D")["line_problem"]
