"""Compare the published marts with the simulator's ground truth, column by column.

The simulator writes `truth/<table>.csv` for every published table that holds
numbers (`TRUTH_TABLES`); the pipeline must reproduce them exactly: counts and
text equal, rates within 1e-9, money to the cent. Which columns are compared,
and how, is read from the pipeline's side: the dbt contract of each mart
(`models/marts/<table>.yml`, its columns and data types, its unique key). So a
column the pipeline publishes but the truth lacks is a difference, not a column
quietly left out. Each `Comparison` lists every disagreement in words.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import yaml

from churnhouse.warehouse import Warehouse, checked_identifier

Fetch = Callable[[str], list[tuple]]  # SQL with a `{schema}` prefix placeholder → rows

RATE_TOLERANCE = 1e-9
CENT = Decimal("0.01")

# The published tables the truth pins (issue 15); a table listed here without a truth file
# is a difference. New marts with a truth join this tuple.
TRUTH_TABLES = (
    "churn_monthly",
    "churn_events",
    "nps_monthly",
    "cancel_saves",
    "engagement_monthly",
    "fct_customer_mrr_monthly",
    "dim_customers",
    "identity_unmatched",
)


@dataclass(frozen=True)
class MartContract:
    """A mart as the pipeline publishes it: its key and each column's kind."""

    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    money: tuple[str, ...]  # decimal: compared to the cent
    rates: tuple[str, ...]  # double: compared within RATE_TOLERANCE

    @property
    def exact(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.key + self.money + self.rates)


def _dbt_project_dir() -> Path:
    from churnhouse.config import dbt_project_dir

    return dbt_project_dir()


def mart_contract(table: str, project_dir: Path | None = None) -> MartContract:
    """The contract of `table` from its dbt model YAML (columns, data types, unique key)."""
    folder = Path(project_dir or _dbt_project_dir()) / "models" / "marts"
    document = yaml.safe_load((folder / f"{table}.yml").read_text(encoding="utf-8"))
    model = next(m for m in document["models"] if m["name"] == table)
    columns, money, rates, key = [], [], [], ()
    for column in model["columns"]:
        name, kind = column["name"], str(column.get("data_type", "")).lower()
        columns.append(name)
        if kind.startswith(("decimal", "numeric")):
            money.append(name)
        elif kind in ("double precision", "double", "float", "real"):
            rates.append(name)
        if "unique" in (column.get("data_tests") or []):
            key = (name,)
    for test in model.get("data_tests") or []:
        if isinstance(test, dict) and "unique_combination" in test:
            key = tuple(test["unique_combination"]["arguments"]["columns"])
    if not key:
        raise ValueError(f"{table}: its contract names no unique key to match rows by")
    return MartContract(table, key, tuple(columns), tuple(money), tuple(rates))


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
    return _read_truth_with_header(bundle, name)[1]


def _read_truth_with_header(bundle: Path, name: str) -> tuple[list[str], list[dict]]:
    with open(bundle / "truth" / f"{name}.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


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


def compare_table(
    fetch: Fetch, bundle: Path, table: str, project_dir: Path | None = None
) -> Comparison:
    """One mart against `truth/<table>.csv`, every column of its contract."""
    contract = mart_contract(table, project_dir)
    pipeline = _read_table(fetch, table, contract.columns)
    path = Path(bundle) / "truth" / f"{table}.csv"
    if not path.exists():
        comparison = Comparison(table, 0, len(pipeline))
        comparison.problems.append(f"the truth has no {table}.csv")
        return comparison
    header, truth = _read_truth_with_header(Path(bundle), table)
    lacking = [column for column in contract.columns if column not in header]
    if lacking:
        comparison = Comparison(table, len(truth), len(pipeline))
        comparison.problems += [
            f"column {column}: published by the pipeline, missing from the truth"
            for column in lacking
        ]
        return comparison
    return _compare(
        table, truth, pipeline, contract.key, contract.exact, contract.money, contract.rates
    )


def compare_with_truth(
    warehouse: Warehouse,
    bundle: Path,
    schema: str = "analytics",
    tables: tuple[str, ...] = TRUTH_TABLES,
    project_dir: Path | None = None,
) -> list[Comparison]:
    """Each of `tables` in `schema` of the warehouse against the truth, in that order."""
    prefix = f"{checked_identifier(schema)}."

    def fetch(sql: str) -> list[tuple]:
        with warehouse.transaction() as tx:
            return tx.fetchall(sql.format(schema=prefix))

    return [compare_table(fetch, Path(bundle), table, project_dir) for table in tables]


def compare_published_with_truth(
    warehouse: Warehouse, bundle: Path, tables: tuple[str, ...] = TRUTH_TABLES
) -> list[Comparison]:
    """The same check on the published tables, read the way a BI user reads them."""
    from churnhouse.query import run_query

    def fetch(sql: str) -> list[tuple]:
        return run_query(warehouse, sql.format(schema=""))[1]

    return [compare_table(fetch, Path(bundle), table) for table in tables]
