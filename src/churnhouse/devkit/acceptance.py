"""Compare the modeled churn tables with the simulator's ground truth.

The simulator writes `truth/churn_monthly.csv` and `truth/churn_events.csv` from what
it generated; the pipeline must reproduce them exactly: counts equal, rates within
1e-9, money to the cent. Each `Comparison` lists every disagreement in words.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from churnhouse.devkit.simulator.truth import CHURN_COLUMNS
from churnhouse.devkit.simulator.truth import COUNTS as MONTHLY_COUNTS
from churnhouse.devkit.simulator.truth import MONEY as MONTHLY_MONEY
from churnhouse.warehouse import Warehouse, checked_identifier

Fetch = Callable[[str], list[tuple]]  # SQL with a `{schema}` prefix placeholder → rows

RATE_TOLERANCE = 1e-9
CENT = Decimal("0.01")

MONTHLY_KEY = ("month", "segment", "region")
MONTHLY_RATES = ("logo_churn_rate", "gross_revenue_churn_rate", "net_revenue_retention")

EVENTS_KEY = ("customer_key", "churned_at")
EVENTS_MONEY = ("mrr_lost",)
# The source ids beside the customer key are how the truth names it, not a churn fact.
EVENTS_EXACT = tuple(
    column
    for column in CHURN_COLUMNS
    if column not in (*EVENTS_KEY, *EVENTS_MONEY, "crm_account_id", "billing_customer_id")
)


@dataclass
class Comparison:
    table: str
    truth_rows: int
    pipeline_rows: int
    problems: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.problems

    def describe(self, limit: int = 10) -> str:
        head = f"{self.table}: {self.pipeline_rows} rows vs {self.truth_rows} in the truth"
        if self.equal:
            return f"{head}, all equal"
        shown = "\n  ".join(self.problems[:limit])
        more = len(self.problems) - limit
        tail = f"\n  ... and {more} more" if more > 0 else ""
        return f"{head}, {len(self.problems)} differences:\n  {shown}{tail}"


def _text(value) -> str:
    """One spelling per value, whichever side it came from."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    if text in ("True", "False"):
        return text.lower()
    return text


def _money(value) -> Decimal | None:
    text = _text(value)
    return Decimal(text).quantize(CENT) if text else None


def _rate(value) -> float | None:
    text = _text(value)
    return float(text) if text else None


def _read_truth(bundle: Path, name: str) -> list[dict]:
    with open(bundle / "truth" / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read_table(fetch: Fetch, table: str, columns: tuple[str, ...]) -> list[dict]:
    select = ", ".join(checked_identifier(column) for column in columns)
    rows = fetch(f"SELECT {select} FROM {{schema}}{checked_identifier(table)}")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _compare(
    table: str,
    truth: list[dict],
    pipeline: list[dict],
    key: tuple[str, ...],
    exact: tuple[str, ...],
    money: tuple[str, ...],
    rates: tuple[str, ...] = (),
) -> Comparison:
    comparison = Comparison(table, len(truth), len(pipeline))

    def index(rows: list[dict], side: str) -> dict:
        keyed = {}
        for row in rows:
            row_key = tuple(_text(row[column]) for column in key)
            if row_key in keyed:
                comparison.problems.append(f"{side} has {row_key} twice")
            keyed[row_key] = row
        return keyed

    expected, actual = index(truth, "truth"), index(pipeline, "pipeline")
    for row_key in sorted(expected.keys() - actual.keys()):
        comparison.problems.append(f"missing from the pipeline: {row_key}")
    for row_key in sorted(actual.keys() - expected.keys()):
        comparison.problems.append(f"not in the truth: {row_key}")
    for row_key in sorted(expected.keys() & actual.keys()):
        want, got = expected[row_key], actual[row_key]
        for column in exact:
            if _text(want[column]) != _text(got[column]):
                comparison.problems.append(
                    f"{row_key} {column}: truth {want[column]!r}, pipeline {_text(got[column])!r}"
                )
        for column in money:
            if _money(want[column]) != _money(got[column]):
                comparison.problems.append(
                    f"{row_key} {column}: truth {want[column]}, pipeline {got[column]}"
                )
        for column in rates:
            w, g = _rate(want[column]), _rate(got[column])
            if (w is None) != (g is None) or (w is not None and abs(w - g) > RATE_TOLERANCE):
                comparison.problems.append(
                    f"{row_key} {column}: truth {want[column]}, pipeline {got[column]}"
                )
    return comparison


def compare_with_truth(
    warehouse: Warehouse, bundle: Path, schema: str = "analytics"
) -> list[Comparison]:
    """`churn_monthly` and `churn_events` in `schema` of the warehouse against the truth."""
    prefix = f"{checked_identifier(schema)}."

    def fetch(sql: str) -> list[tuple]:
        with warehouse.transaction() as tx:
            return tx.fetchall(sql.format(schema=prefix))

    return _compare_tables(fetch, Path(bundle))


def compare_published_with_truth(warehouse: Warehouse, bundle: Path) -> list[Comparison]:
    """The same check on the published tables, read the way a BI user reads them."""
    from churnhouse.query import run_query

    return _compare_tables(lambda sql: run_query(warehouse, sql.format(schema=""))[1], bundle)


def _compare_tables(fetch: Fetch, bundle: Path) -> list[Comparison]:
    monthly_columns = MONTHLY_KEY + MONTHLY_COUNTS + MONTHLY_MONEY + MONTHLY_RATES
    events_columns = EVENTS_KEY + EVENTS_EXACT + EVENTS_MONEY
    return [
        _compare(
            "churn_monthly",
            _read_truth(bundle, "churn_monthly"),
            _read_table(fetch, "churn_monthly", monthly_columns),
            MONTHLY_KEY,
            MONTHLY_COUNTS,
            MONTHLY_MONEY,
            MONTHLY_RATES,
        ),
        _compare(
            "churn_events",
            _read_truth(bundle, "churn_events"),
            _read_table(fetch, "churn_events", events_columns),
            EVENTS_KEY,
            EVENTS_EXACT,
            EVENTS_MONEY,
        ),
    ]
