"""`churnhouse query`: a read-only query on the published tables of the configured warehouse.

DuckDB: the published file, opened read-only with external access off (the
working file is never touched, so a query never waits for the night).
PostgreSQL: a read-only transaction with the published schema first on the
search path. Anything but one SELECT is refused before it reaches the engine.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal

from churnhouse.warehouse import Warehouse


class QueryRefused(ValueError):
    """The text is not a single read-only SELECT."""


def ensure_read_only(sql: str) -> None:
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise QueryRefused(f"could not parse the query: {error}") from error
    kinds = [statement.type.name for statement in statements]
    if kinds != ["SELECT"]:
        shown = ", ".join(kinds) or "nothing"
        raise QueryRefused(
            f"churnhouse query runs exactly one read (SELECT / WITH ... SELECT); refused: {shown}"
        )


def run_query(warehouse: Warehouse, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a read-only query on the published tables."""
    ensure_read_only(sql)
    return warehouse.read_published(sql)


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def render(columns: list[str], rows: list[tuple], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(
            [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows],
            ensure_ascii=False,
            indent=1,
        )
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    cells = [columns] + [["" if v is None else str(_plain(v)) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
