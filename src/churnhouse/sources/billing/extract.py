"""Billing objects (API or export folder) → raw tables: key columns beside the whole raw JSON.

Customers and subscriptions are re-read in full each run; invoices and charges
from `since` (the look-back start) on. A copy seen again replaces the earlier
one. A field the models need that is missing fails the load, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from churnhouse.config import SourceSettings
from churnhouse.contracts import (
    BadRecord,
    Batch,
    Extracted,
    ExtractWindow,
    RawTable,
    RunWindow,
    from_epoch,
    rows_to_columns,
    with_meta,
)
from churnhouse.errors import ContractError

SOURCE = "billing"
_RAW = {"raw": "TEXT"}

CUSTOMERS = RawTable(
    "billing_customers",
    {
        "id": "TEXT",
        "email": "TEXT",
        "name": "TEXT",
        "created": "TIMESTAMP",
        "currency": "TEXT",
        "crm_account_id": "TEXT",
        "deleted": "BOOLEAN",
        **_RAW,
    },
    key=("id",),
)

SUBSCRIPTIONS = RawTable(
    "billing_subscriptions",
    {
        "id": "TEXT",
        "customer": "TEXT",
        "status": "TEXT",
        "created": "TIMESTAMP",
        "start_date": "TIMESTAMP",
        "trial_start": "TIMESTAMP",
        "trial_end": "TIMESTAMP",
        "cancel_at_period_end": "BOOLEAN",
        "canceled_at": "TIMESTAMP",
        "ended_at": "TIMESTAMP",
        "current_period_start": "TIMESTAMP",
        "current_period_end": "TIMESTAMP",
        "cancellation_reason": "TEXT",
        "cancellation_feedback": "TEXT",
        "cancellation_comment": "TEXT",
        **_RAW,
    },
    key=("id",),
)

INVOICE_LINES = RawTable(
    "billing_invoice_lines",
    {
        "invoice_id": "TEXT",
        "line_id": "TEXT",
        "subscription": "TEXT",
        "price_id": "TEXT",
        "product": "TEXT",
        "currency": "TEXT",
        "unit_amount": "BIGINT",
        "recurring_interval": "TEXT",
        "recurring_interval_count": "BIGINT",
        "quantity": "BIGINT",
        "amount": "BIGINT",
        "period_start": "TIMESTAMP",
        "period_end": "TIMESTAMP",
        "proration": "BOOLEAN",
        **_RAW,
    },
    key=("invoice_id", "line_id"),
)

INVOICES = RawTable(
    "billing_invoices",
    {
        "id": "TEXT",
        "customer": "TEXT",
        "subscription": "TEXT",
        "status": "TEXT",
        "currency": "TEXT",
        "created": "TIMESTAMP",
        "period_start": "TIMESTAMP",
        "period_end": "TIMESTAMP",
        "amount_due": "BIGINT",
        "amount_paid": "BIGINT",
        "attempt_count": "BIGINT",
        "billing_reason": "TEXT",
        **_RAW,
    },
    key=("id",),
    children=(INVOICE_LINES,),
)

CHARGES = RawTable(
    "billing_charges",
    {
        "id": "TEXT",
        "customer": "TEXT",
        "invoice": "TEXT",
        "amount": "BIGINT",
        "currency": "TEXT",
        "created": "TIMESTAMP",
        "status": "TEXT",
        "failure_code": "TEXT",
        **_RAW,
    },
    key=("id",),
)

# Incremental resources are read from the look-back start; the others in full.
INCREMENTAL = {"invoices", "charges"}


def _epoch(value) -> datetime | None:
    if value is None:
        return None
    return from_epoch(int(value))


def _get(obj: dict, path: str, resource: str, required: bool = True):
    """The value at dotted `path`; a missing required one is a ContractError naming it."""
    value = obj
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif required:
            raise ContractError(
                f"billing {resource} {obj.get('id', '?')}: "
                f"missing field {path!r} that the models need"
            )
        else:
            return None
    return value


def customer_row(obj: dict) -> dict:
    deleted = bool(obj.get("deleted"))
    required = not deleted  # Stripe's deleted customers carry only id and deleted
    metadata = obj.get("metadata") or {}
    return {
        "id": _get(obj, "id", "customer"),
        "email": obj.get("email"),
        "name": obj.get("name"),
        "created": _epoch(_get(obj, "created", "customer", required)),
        "currency": obj.get("currency"),
        "crm_account_id": metadata.get("crm_account_id") or None,
        "deleted": deleted,
    }


def subscription_row(obj: dict) -> dict:
    details = obj.get("cancellation_details") or {}
    row = {"id": _get(obj, "id", "subscription")}
    for field in ("customer", "status"):
        row[field] = _get(obj, field, "subscription")
    row["created"] = _epoch(_get(obj, "created", "subscription"))
    for field in (
        "start_date",
        "trial_start",
        "trial_end",
        "canceled_at",
        "ended_at",
        "current_period_start",
        "current_period_end",
    ):
        row[field] = _epoch(obj.get(field))
    row["cancel_at_period_end"] = bool(obj.get("cancel_at_period_end"))
    row["cancellation_reason"] = details.get("reason")
    row["cancellation_feedback"] = details.get("feedback")
    row["cancellation_comment"] = details.get("comment")
    return row


def invoice_row(obj: dict) -> dict:
    return {
        "id": _get(obj, "id", "invoice"),
        "customer": _get(obj, "customer", "invoice"),
        "subscription": obj.get("subscription"),
        "status": _get(obj, "status", "invoice"),
        "currency": _get(obj, "currency", "invoice").lower(),
        "created": _epoch(_get(obj, "created", "invoice")),
        "period_start": _epoch(obj.get("period_start")),
        "period_end": _epoch(obj.get("period_end")),
        "amount_due": obj.get("amount_due"),
        "amount_paid": obj.get("amount_paid"),
        "attempt_count": obj.get("attempt_count"),
        "billing_reason": obj.get("billing_reason"),
    }


def invoice_line_rows(obj: dict) -> Iterator[dict]:
    invoice_id = obj["id"]
    lines = _get(obj, "lines.data", "invoice")
    for index, line in enumerate(lines):
        where = f"lines.data[{index}]"
        price = line.get("price") or {}
        recurring = price.get("recurring") or {}
        period = _line_field(obj, line, "period", where)
        yield {
            "invoice_id": invoice_id,
            "line_id": _line_field(obj, line, "id", where),
            "subscription": line.get("subscription") or obj.get("subscription"),
            "price_id": price.get("id"),
            "product": price.get("product"),
            "currency": (price.get("currency") or line.get("currency") or obj["currency"]).lower(),
            "unit_amount": price.get("unit_amount"),
            "recurring_interval": recurring.get("interval"),
            "recurring_interval_count": recurring.get("interval_count")
            or (1 if recurring else None),
            "quantity": line.get("quantity"),
            "amount": _line_field(obj, line, "amount", where),
            "period_start": _epoch(_line_field(obj, period, "start", f"{where}.period")),
            "period_end": _epoch(_line_field(obj, period, "end", f"{where}.period")),
            "proration": bool(line.get("proration")),
            "raw": json.dumps(line, ensure_ascii=False),
        }


def _line_field(invoice: dict, container: dict, field: str, where: str):
    if not isinstance(container, dict) or container.get(field) is None:
        raise ContractError(
            f"billing invoice {invoice.get('id', '?')}: missing field {where}.{field!r} "
            "that the models need"
        )
    return container[field]


def charge_row(obj: dict) -> dict:
    return {
        "id": _get(obj, "id", "charge"),
        "customer": _get(obj, "customer", "charge"),
        "invoice": obj.get("invoice"),
        "amount": _get(obj, "amount", "charge"),
        "currency": _get(obj, "currency", "charge").lower(),
        "created": _epoch(_get(obj, "created", "charge")),
        "status": _get(obj, "status", "charge"),
        "failure_code": obj.get("failure_code"),
    }


_SHAPES = {
    "customers": (CUSTOMERS, customer_row),
    "subscriptions": (SUBSCRIPTIONS, subscription_row),
    "invoices": (INVOICES, invoice_row),
    "charges": (CHARGES, charge_row),
}


def _objects(
    settings: SourceSettings, resource: str, created_gte: int | None, bad: list[BadRecord]
) -> Iterator[dict]:
    """Objects of one resource from the API or the export folder; bad export lines go to `bad`."""
    if settings.billing_is_api:
        from churnhouse.sources.billing.client import BillingApiClient

        with BillingApiClient(settings.billing_url, settings.billing_api_key or "") as client:
            yield from client.iter_objects(resource, created_gte=created_gte)
        return
    from pathlib import Path

    from churnhouse.sources.billing.export import iter_export_objects

    folder = Path(settings.billing_url.removeprefix("file://"))
    if not folder.is_dir():
        raise FileNotFoundError(f"billing export folder {folder} does not exist")
    for line_no, obj, raw_text, error in iter_export_objects(folder, resource):
        if error is not None:
            bad.append(
                BadRecord(
                    resource.removesuffix("s"), f"{resource}.jsonl:{line_no}", raw_text, error
                )
            )
        elif created_gte is None or int(obj.get("created") or 0) >= created_gte:
            yield obj


def _batch_for(
    resource: str, objects: Iterator[dict], run: RunWindow
) -> tuple[Batch, Batch | None]:
    table, to_row = _SHAPES[resource]
    latest: dict[str, dict] = {}
    for obj in objects:  # a later copy of the same id replaces the earlier one
        latest[_get(obj, "id", resource.removesuffix("s"))] = obj
    rows = [
        {**to_row(obj), "raw": json.dumps(obj, ensure_ascii=False)}
        for _, obj in sorted(latest.items())
    ]
    batch = Batch(table, with_meta(table, rows_to_columns(table, rows), SOURCE, run))
    if resource != "invoices":
        return batch, None
    lines = [
        line for obj in (latest[key] for key in sorted(latest)) for line in invoice_line_rows(obj)
    ]
    return batch, Batch(
        INVOICE_LINES, with_meta(INVOICE_LINES, rows_to_columns(INVOICE_LINES, lines), SOURCE, run)
    )


def extract(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    """All four billing resources for this run, and the export lines that could not be read."""
    since = window.since
    created_gte = int(since.replace(tzinfo=UTC).timestamp()) if since else None
    extracted = Extracted([])
    for resource in _SHAPES:
        start = created_gte if resource in INCREMENTAL else None
        objects = _objects(settings, resource, start, extracted.bad)
        batch, lines = _batch_for(resource, objects, window.run)
        extracted.batches.append(batch)
        if lines is not None:
            extracted.batches.append(lines)
    return extracted
