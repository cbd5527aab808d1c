"""Billing objects (API or export folder) → raw tables: key columns beside the whole raw JSON.

Customers and subscriptions are re-read in full each run; invoices and charges
from `since` (the look-back start) on. A copy seen again replaces the earlier
one. A field the models need that is missing fails the load, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from churnhouse.config import Sources
from churnhouse.errors import ContractError
from churnhouse.load import Batch, RawTable, RunInfo, with_meta

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

FX_RATES = RawTable(
    "fx_rates",
    {"currency": "TEXT", "month": "TEXT", "rate_to_usd": "TEXT"},
    key=("currency", "month"),
)

# Incremental resources are read from the look-back start; the others in full.
INCREMENTAL = {"invoices", "charges"}


def _epoch(value) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), UTC).replace(tzinfo=None)


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
    sources: Sources, resource: str, created_gte: int | None, bad: list[dict]
) -> Iterator[dict]:
    """Objects of one resource from the API or the export folder; bad export lines go to `bad`."""
    if sources.billing_is_api:
        from churnhouse.sources.billing.client import BillingApiClient

        with BillingApiClient(sources.billing_url, sources.billing_api_key or "") as client:
            yield from client.iter_objects(resource, created_gte=created_gte)
        return
    from pathlib import Path

    from churnhouse.sources.billing.export import iter_export_objects

    folder = Path(sources.billing_url.removeprefix("file://"))
    if not folder.is_dir():
        raise FileNotFoundError(f"billing export folder {folder} does not exist")
    for line_no, obj, raw_text, error in iter_export_objects(folder, resource):
        if error is not None:
            bad.append(
                {
                    "object_kind": resource.removesuffix("s"),
                    "location": f"{resource}.jsonl:{line_no}",
                    "raw_text": raw_text,
                    "reason": error,
                }
            )
        elif created_gte is None or int(obj.get("created") or 0) >= created_gte:
            yield obj


def _batch_for(resource: str, objects: Iterator[dict], run: RunInfo) -> tuple[Batch, Batch | None]:
    table, to_row = _SHAPES[resource]
    latest: dict[str, dict] = {}
    for obj in objects:  # a later copy of the same id replaces the earlier one
        latest[_get(obj, "id", resource.removesuffix("s"))] = obj
    rows = [
        {**to_row(obj), "raw": json.dumps(obj, ensure_ascii=False)}
        for _, obj in sorted(latest.items())
    ]
    batch = Batch(table, with_meta(table, _columns(table, rows), SOURCE, run))
    if resource != "invoices":
        return batch, None
    lines = [
        line for obj in (latest[key] for key in sorted(latest)) for line in invoice_line_rows(obj)
    ]
    return batch, Batch(
        INVOICE_LINES, with_meta(INVOICE_LINES, _columns(INVOICE_LINES, lines), SOURCE, run)
    )


def _columns(table: RawTable, rows: list[dict]) -> dict[str, list]:
    return {name: [row[name] for row in rows] for name in table.columns}


def fx_rates_batch(fx_rates_uri: str, run: RunInfo) -> tuple[Batch, list[dict]]:
    """The finance rates file (currency,month,rate_to_usd); rates stay exact decimal strings."""
    import csv
    import re
    from decimal import Decimal, InvalidOperation
    from pathlib import Path

    path = Path(fx_rates_uri.removeprefix("file://"))
    if not path.is_file():
        raise FileNotFoundError(f"FX rates file {path} does not exist")
    rows: dict[tuple[str, str], dict] = {}
    bad: list[dict] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"currency", "month", "rate_to_usd"} - set(reader.fieldnames or [])
        if missing:
            raise ContractError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            currency = (row["currency"] or "").strip().lower()
            month, rate = (row["month"] or "").strip(), (row["rate_to_usd"] or "").strip()
            try:
                valid = bool(currency) and re.fullmatch(r"\d{4}-\d{2}", month) and Decimal(rate) > 0
            except InvalidOperation:
                valid = False
            if not valid:
                bad.append(
                    {
                        "object_kind": "fx_rate",
                        "location": f"{path.name}:{reader.line_num}",
                        "raw_text": ",".join(
                            row.get(k) or "" for k in ("currency", "month", "rate_to_usd")
                        ),
                        "reason": "needs a currency, a YYYY-MM month and a positive decimal rate",
                    }
                )
                continue
            rows[(currency, month)] = {"currency": currency, "month": month, "rate_to_usd": rate}
    ordered = [rows[key] for key in sorted(rows)]
    return Batch(FX_RATES, with_meta(FX_RATES, _columns(FX_RATES, ordered), SOURCE, run)), bad


def extract(
    sources: Sources, since: datetime | None, run: RunInfo
) -> tuple[list[Batch], list[dict]]:
    """All four billing resources for this run, and the export lines that could not be read."""
    created_gte = int(since.replace(tzinfo=UTC).timestamp()) if since else None
    batches: list[Batch] = []
    bad: list[dict] = []
    for resource in _SHAPES:
        window = created_gte if resource in INCREMENTAL else None
        batch, lines = _batch_for(resource, _objects(sources, resource, window, bad), run)
        batches.append(batch)
        if lines is not None:
            batches.append(lines)
    if sources.fx_rates_uri:
        rates, bad_rates = fx_rates_batch(sources.fx_rates_uri, run)
        batches.append(rates)
        bad.extend(bad_rates)
    return batches, bad
