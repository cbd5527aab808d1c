"""Billing objects (API or export folder) → raw tables: key columns beside the whole raw JSON.

Both Stripe object shapes land in one raw form (docs/sources.md, "Two object
shapes"): the shape before API version 2025-03-31 (`line.price`,
`invoice.subscription`, ...) and the one from it (`line.pricing`,
`parent.subscription_details`, ...), also mixed in one export. Any id field may
hold the expanded object instead. A line's recurring interval comes from its own
price object, else from the price it names (`/v1/prices`, a subscription item).

Customers, subscriptions and prices are re-read in full each run; invoices and
charges from `since` (the look-back start) on. A copy seen again replaces the
earlier one. A field the models need that is missing fails the load, naming it.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
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
from churnhouse.sources.billing.export import DumpedTexts

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

PRICES = RawTable(
    "billing_prices",
    {
        "id": "TEXT",
        "product": "TEXT",
        "type": "TEXT",
        "currency": "TEXT",
        "unit_amount": "BIGINT",
        "recurring_interval": "TEXT",
        "recurring_interval_count": "BIGINT",
        "active": "BOOLEAN",
        "created": "TIMESTAMP",
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
        "subscription_item": "TEXT",
        "price_id": "TEXT",
        "price_type": "TEXT",
        "product": "TEXT",
        "currency": "TEXT",
        "unit_amount": "BIGINT",
        "recurring_interval": "TEXT",
        "recurring_interval_count": "BIGINT",
        "quantity": "BIGINT",
        "amount": "BIGINT",
        "discount_amount": "BIGINT",
        "period_start": "TIMESTAMP",
        "period_end": "TIMESTAMP",
        "proration": "BOOLEAN",
        # Why this line cannot be priced (unknown price, a subscription line without a
        # recurring interval); the raw gate stops the night on any non-null value.
        "line_problem": "TEXT",
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


def object_id(value) -> str | None:
    """An id field's id, whether it holds the id or the expanded object (`expand[]`)."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def _dig(obj: dict, *keys: str):
    """obj[k1][k2]... or None where any step is missing or null."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


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


def _recurring(price: dict | None) -> dict:
    return (price or {}).get("recurring") or {}


def price_row(obj: dict) -> dict:
    recurring = _recurring(obj)
    return {
        "id": _get(obj, "id", "price"),
        "product": object_id(obj.get("product")),
        "type": obj.get("type") or ("recurring" if recurring else None),
        "currency": (obj.get("currency") or "").lower() or None,
        "unit_amount": obj.get("unit_amount"),
        "recurring_interval": recurring.get("interval"),
        "recurring_interval_count": recurring.get("interval_count") or (1 if recurring else None),
        "active": obj.get("active"),
        "created": _epoch(obj.get("created")),
    }


def _item_periods(obj: dict) -> tuple[list, list]:
    """From 2025-03-31 the billing period lives on each subscription item."""
    items = _dig(obj, "items", "data") or []
    starts = [i["current_period_start"] for i in items if i.get("current_period_start")]
    ends = [i["current_period_end"] for i in items if i.get("current_period_end")]
    return starts, ends


def subscription_row(obj: dict) -> dict:
    details = obj.get("cancellation_details") or {}
    row = {"id": _get(obj, "id", "subscription")}
    row["customer"] = object_id(_get(obj, "customer", "subscription"))
    row["status"] = _get(obj, "status", "subscription")
    row["created"] = _epoch(_get(obj, "created", "subscription"))
    for name in ("start_date", "trial_start", "trial_end", "canceled_at", "ended_at"):
        row[name] = _epoch(obj.get(name))
    starts, ends = _item_periods(obj)
    row["current_period_start"] = _epoch(
        obj.get("current_period_start") or (min(starts) if starts else None)
    )
    row["current_period_end"] = _epoch(
        obj.get("current_period_end") or (max(ends) if ends else None)
    )
    row["cancel_at_period_end"] = bool(obj.get("cancel_at_period_end"))
    row["cancellation_reason"] = details.get("reason")
    row["cancellation_feedback"] = details.get("feedback")
    row["cancellation_comment"] = details.get("comment")
    return row


def invoice_subscription(obj: dict) -> str | None:
    """`invoice.subscription` (before 2025-03-31) or `parent.subscription_details.subscription`."""
    return object_id(obj.get("subscription")) or object_id(
        _dig(obj, "parent", "subscription_details", "subscription")
    )


def invoice_row(obj: dict) -> dict:
    return {
        "id": _get(obj, "id", "invoice"),
        "customer": object_id(_get(obj, "customer", "invoice")),
        "subscription": invoice_subscription(obj),
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


@dataclass(frozen=True)
class LineFacts:
    """What a line says about its subscription and price, in either API shape."""

    subscription: str | None
    subscription_item: str | None
    # Billed for a subscription item (always a recurring price), not an invoice item.
    is_subscription_item: bool
    proration: bool
    price: dict | None  # the whole price object, when the line carries it
    price_id: str | None
    product: str | None


_LINE_PARENTS = ("subscription_item_details", "invoice_item_details")


def line_facts(line: dict) -> LineFacts:
    parent = line.get("parent") or {}
    # Stripe fills the block `parent.type` names; the other may hold placeholders.
    kind = parent.get("type")
    if kind in _LINE_PARENTS:
        details = parent.get(kind) or {}
    else:
        details = parent.get(_LINE_PARENTS[0]) or parent.get(_LINE_PARENTS[1]) or {}
    old_price = line.get("price")
    new_price = _dig(line, "pricing", "price_details", "price")
    price_value = old_price if old_price is not None else new_price
    price = price_value if isinstance(price_value, dict) else None
    product = _dig(line, "pricing", "price_details", "product")
    if product is None and price is not None:
        product = price.get("product")
    proration = line.get("proration")
    if proration is None:
        proration = details.get("proration")
    subscription_item = object_id(line.get("subscription_item")) or object_id(
        details.get("subscription_item")
    )
    return LineFacts(
        subscription=object_id(line.get("subscription")) or object_id(details.get("subscription")),
        subscription_item=subscription_item,
        is_subscription_item=kind == _LINE_PARENTS[0]
        or line.get("type") == "subscription"
        or (kind is None and bool(subscription_item)),
        proration=bool(proration),
        price=price,
        price_id=object_id(price_value),
        product=object_id(product),
    )


def _discount_total(line: dict) -> int:
    return sum(int(d.get("amount") or 0) for d in line.get("discount_amounts") or [])


def _dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)


def invoice_line_rows(
    obj: dict,
    lines: list[dict],
    prices: dict[str, dict],
    dumps: Callable[[dict], str] = _dumps,
) -> Iterator[dict]:
    """One raw row per line; `prices` resolves a price named by id (the newer shape).

    `dumps` gives a line's JSON text (json.dumps' form) for the raw column.
    """
    invoice_id = obj["id"]
    subscription = invoice_subscription(obj)
    for index, line in enumerate(lines):
        where = f"lines.data[{index}]"
        facts = line_facts(line)
        price = facts.price or prices.get(facts.price_id or "")
        recurring = _recurring(price)
        period = _line_field(obj, line, "period", where)
        line_id = _line_field(obj, line, "id", where)
        yield {
            "invoice_id": invoice_id,
            "line_id": line_id,
            "subscription": facts.subscription or subscription,
            "subscription_item": facts.subscription_item,
            "price_id": facts.price_id,
            "price_type": (price or {}).get("type") or ("recurring" if recurring else None),
            "product": facts.product,
            "currency": (
                (price or {}).get("currency") or line.get("currency") or obj["currency"]
            ).lower(),
            "unit_amount": (price or {}).get("unit_amount"),
            "recurring_interval": recurring.get("interval"),
            "recurring_interval_count": recurring.get("interval_count")
            or (1 if recurring else None),
            "quantity": line.get("quantity"),
            "amount": _line_field(obj, line, "amount", where),
            "discount_amount": _discount_total(line),
            "period_start": _epoch(_line_field(obj, period, "start", f"{where}.period")),
            "period_end": _epoch(_line_field(obj, period, "end", f"{where}.period")),
            "proration": facts.proration,
            "line_problem": _line_problem(invoice_id, line_id, facts, price, subscription),
            "raw": dumps(line),
        }


def _line_problem(
    invoice_id: str, line_id: str, facts: LineFacts, price: dict | None, subscription: str | None
) -> str | None:
    """Why MRR cannot be computed from this line; None when it can (or it is not MRR)."""
    where = f"invoice {invoice_id} line {line_id}"
    if facts.price_id is not None and price is None:
        return f"{where}: price {facts.price_id} is in no price list (/v1/prices, prices.jsonl)"
    if _recurring(price).get("interval"):
        return None
    claimed = facts.subscription or subscription
    # An invoice item on a subscription's invoice (a setup fee) may be one-time.
    one_time_item = (price or {}).get("type") == "one_time" and not facts.is_subscription_item
    if claimed and not one_time_item:
        return f"{where}: claims subscription {claimed} but has no recurring interval"
    return None


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
        "customer": object_id(_get(obj, "customer", "charge")),
        "invoice": object_id(obj.get("invoice")),
        "amount": _get(obj, "amount", "charge"),
        "currency": _get(obj, "currency", "charge").lower(),
        "created": _epoch(_get(obj, "created", "charge")),
        "status": _get(obj, "status", "charge"),
        "failure_code": obj.get("failure_code"),
    }


_SHAPES = {
    "prices": (PRICES, price_row),
    "customers": (CUSTOMERS, customer_row),
    "subscriptions": (SUBSCRIPTIONS, subscription_row),
    "invoices": (INVOICES, invoice_row),
    "charges": (CHARGES, charge_row),
}


@dataclass
class _Reading:
    """One run's view of the billing system: where objects come from, and what is known."""

    settings: SourceSettings
    bad: list[BadRecord]
    prices: dict[str, dict] = field(default_factory=dict)  # price id → price object
    client: object | None = None
    extra_lines: dict[str, dict[str, dict]] | None = None  # export: invoice → line id → line
    texts: DumpedTexts = field(default_factory=DumpedTexts)  # the raw column's JSON text

    def objects(self, resource: str, created_gte: int | None) -> Iterator[dict]:
        if self.client is not None:
            yield from self.client.iter_objects(resource, created_gte=created_gte)
            return
        for obj in self._export_objects(resource):
            if created_gte is None or int(obj.get("created") or 0) >= created_gte:
                yield obj

    def _export_objects(self, resource: str) -> Iterator[dict]:
        from churnhouse.sources.billing.export import iter_export_objects

        for line in iter_export_objects(self.folder, resource):
            if line.error is not None:
                kind = resource.removesuffix("s")
                location = f"{resource}.jsonl:{line.line_no}"
                self.bad.append(BadRecord(kind, location, line.raw, line.error))
            else:
                self.texts.remember(line)
                yield line.obj

    @property
    def folder(self):
        from pathlib import Path

        folder = Path(self.settings.billing_url.removeprefix("file://"))
        if not folder.is_dir():
            raise FileNotFoundError(f"billing export folder {folder} does not exist")
        return folder

    def learn_prices(self, obj: dict, resource: str) -> None:
        """Remember every whole price object seen, so lines naming one by id resolve."""
        if resource == "prices":
            self.prices[obj["id"]] = obj
        elif resource == "subscriptions":
            for item in _dig(obj, "items", "data") or []:
                price = item.get("price")
                if isinstance(price, dict) and price.get("id"):
                    self.prices.setdefault(price["id"], price)

    def invoice_lines(self, invoice: dict) -> list[dict] | None:
        """All lines of an invoice; None when its list is cut short and the rest is missing."""
        embedded = list(_dig(invoice, "lines", "data") or [])
        if not _dig(invoice, "lines", "has_more"):
            return embedded
        rest = self._remaining_lines(invoice["id"])
        if not rest:
            return None
        lines = {line["id"]: line for line in embedded if line.get("id")}
        lines.update(rest)
        return list(lines.values())

    def _remaining_lines(self, invoice_id: str) -> dict[str, dict]:
        if self.client is not None:
            return {line["id"]: line for line in self.client.iter_invoice_lines(invoice_id)}
        if self.extra_lines is None:
            self.extra_lines = {}
            for line in self._export_objects("invoice_lines"):
                owner = object_id(line.get("invoice"))
                if owner:
                    self.extra_lines.setdefault(owner, {})[line["id"]] = line
        return self.extra_lines.get(invoice_id, {})


def _latest(objects: Iterator[dict], resource: str, reading: _Reading) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for obj in objects:  # a later copy of the same id replaces the earlier one
        latest[_get(obj, "id", resource.removesuffix("s"))] = obj
        reading.learn_prices(obj, resource)
    return latest


def _batch(table: RawTable, rows: list[dict], run: RunWindow) -> Batch:
    return Batch(table, with_meta(table, rows_to_columns(table, rows), SOURCE, run))


def _invoice_batches(
    latest: dict[str, dict], reading: _Reading, run: RunWindow
) -> tuple[Batch, Batch]:
    """Invoices and their lines; an invoice whose cut-short lines are missing is set aside."""
    invoices, lines = [], []
    for key in sorted(latest):
        obj = latest[key]
        all_lines = reading.invoice_lines(obj)
        if all_lines is None:
            reading.bad.append(
                BadRecord(
                    "invoice",
                    f"invoices: {key}",
                    reading.texts.dumps(obj),
                    "lines.has_more is true but none of its remaining lines came "
                    "(invoice_lines.jsonl / GET /v1/invoices/{id}/lines): its MRR would be short",
                    fails_night=True,
                )
            )
            continue
        invoices.append({**invoice_row(obj), "raw": reading.texts.dumps(obj)})
        lines.extend(invoice_line_rows(obj, all_lines, reading.prices, reading.texts.dumps))
    return _batch(INVOICES, invoices, run), _batch(INVOICE_LINES, lines, run)


def extract(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    """All billing resources for this run, and the export lines that could not be read:
    an export folder in bulk by DuckDB (`bulk.py`), the API object by object."""
    if settings.billing_is_api:
        return extract_objects(window, settings)
    return extract_export_in_bulk(window, settings)


def extract_objects(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    """`extract`, one object at a time in Python (the API's pages, or an export's lines)."""
    with _collector_paused(not settings.billing_is_api):
        return _extract(window, settings)


def extract_export_in_bulk(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    """`extract` of an export folder, parsed and shredded by DuckDB (see `bulk.py`)."""
    from churnhouse.config import scratch_duckdb
    from churnhouse.sources.billing.bulk import read_export

    since = window.since
    created_gte = int(since.replace(tzinfo=UTC).timestamp()) if since else None
    tables = {
        "prices": PRICES,
        "customers": CUSTOMERS,
        "subscriptions": SUBSCRIPTIONS,
        "invoices": INVOICES,
        "invoice_lines": INVOICE_LINES,
        "charges": CHARGES,
    }
    with scratch_duckdb() as con:
        return read_export(con, _Reading(settings, []).folder, created_gte, window.run, tables)


@contextmanager
def _collector_paused(pause: bool):
    """Python's cycle collector paused while an export is read: JSON objects hold no
    cycles, and the collector kept walking the growing heap of decoded objects (a
    third of the extraction's time at 40k rows). Reference counting still frees them."""
    was_enabled = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause and was_enabled:
            gc.enable()


def _extract(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    since = window.since
    created_gte = int(since.replace(tzinfo=UTC).timestamp()) if since else None
    extracted = Extracted([])
    reading = _Reading(settings, extracted.bad)
    with _api_client(settings) as client:
        reading.client = client
        for resource, (table, to_row) in _SHAPES.items():
            start = created_gte if resource in INCREMENTAL else None
            latest = _latest(reading.objects(resource, start), resource, reading)
            if resource == "invoices":
                extracted.batches.extend(_invoice_batches(latest, reading, window.run))
                continue
            rows = [
                {**to_row(obj), "raw": reading.texts.dumps(obj)}
                for _, obj in sorted(latest.items())
            ]
            extracted.batches.append(_batch(table, rows, window.run))
    return extracted


def _api_client(settings: SourceSettings):
    """The API client for the run, or nothing (an export folder) — either way a context."""
    if not settings.billing_is_api:
        return nullcontext()
    from churnhouse.sources.billing.client import BillingApiClient

    return BillingApiClient(settings.billing_url, settings.billing_api_key or "")
