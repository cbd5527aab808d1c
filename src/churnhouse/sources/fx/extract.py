"""The finance team's FX rates file (`currency,month,rate_to_usd`) into `raw.fx_rates`."""

from __future__ import annotations

import csv
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from churnhouse.config import SourceSettings
from churnhouse.contracts import (
    BadRecord,
    Batch,
    Extracted,
    ExtractWindow,
    RawTable,
    rows_to_columns,
    with_meta,
)
from churnhouse.errors import ContractError

SOURCE = "fx"
COLUMNS = ("currency", "month", "rate_to_usd")

FX_RATES = RawTable(
    "fx_rates",
    {"currency": "TEXT", "month": "TEXT", "rate_to_usd": "TEXT"},
    key=("currency", "month"),
)


def extract(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    """The whole rates file each run (it is small); rates stay exact decimal strings.

    Without a rates file (`CHURN_FX_RATES_URI` unset) nothing is loaded: every
    invoice must then be in USD, which dbt's FX check enforces.
    """
    if not settings.fx_rates_uri:
        return Extracted([])
    path = Path(settings.fx_rates_uri.removeprefix("file://"))
    if not path.is_file():
        raise FileNotFoundError(f"FX rates file {path} does not exist (CHURN_FX_RATES_URI)")
    rows, bad = _read_rates(path)
    ordered = [rows[key] for key in sorted(rows)]
    batch = Batch(
        FX_RATES, with_meta(FX_RATES, rows_to_columns(FX_RATES, ordered), SOURCE, window.run)
    )
    return Extracted([batch], bad)


def _read_rates(path: Path) -> tuple[dict[tuple[str, str], dict], list[BadRecord]]:
    rows: dict[tuple[str, str], dict] = {}
    bad: list[BadRecord] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ContractError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            currency = (row["currency"] or "").strip().lower()
            month, rate = (row["month"] or "").strip(), (row["rate_to_usd"] or "").strip()
            if not _valid_rate(currency, month, rate):
                text = ",".join(row.get(column) or "" for column in COLUMNS)
                reason = "needs a currency, a YYYY-MM month and a positive decimal rate"
                bad.append(BadRecord("fx_rate", f"{path.name}:{reader.line_num}", text, reason))
                continue
            rows[(currency, month)] = {"currency": currency, "month": month, "rate_to_usd": rate}
    return rows, bad


def _valid_rate(currency: str, month: str, rate: str) -> bool:
    try:
        return bool(currency) and bool(re.fullmatch(r"\d{4}-\d{2}", month)) and Decimal(rate) > 0
    except InvalidOperation:
        return False
