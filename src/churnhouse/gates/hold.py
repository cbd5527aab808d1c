"""Rows a raw suite rejected are held: moved to `raw._quarantine` with the expectation
that rejected them, out of the tables the marts read.

So a rerun of a failed night cannot publish them: the rerun reads the same source
again, the same rows come back, and the gate stops them again — until the source
is fixed, when the re-read rows pass. Rows that broke nothing stay where they are.
"""

from __future__ import annotations

from churnhouse.contracts import QUARANTINE, RunWindow
from churnhouse.gates.runner import Outcome
from churnhouse.warehouse import Transaction, Warehouse, checked_identifier


def _literal(value) -> str:
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _timestamp(value) -> str:
    return f"CAST({_literal(str(value))} AS TIMESTAMP)"


def offending_rows_predicate(expectation, table: str, run_id_param: str = "?") -> str | None:
    """SQL that is true for the rows of tonight's batch an expectation rejects, or None
    for expectations about the batch as a whole (volume, a column's presence)."""
    rule = expectation.expectation_type
    kwargs = expectation.configuration.kwargs
    column = checked_identifier(kwargs["column"]) if kwargs.get("column") else None
    if rule == "expect_column_values_to_not_be_null":
        return f"{column} IS NULL"
    if rule == "expect_column_values_to_be_null":
        return f"{column} IS NOT NULL"
    if rule == "expect_column_values_to_be_in_set":
        values = ", ".join(_literal(v) for v in kwargs["value_set"])
        return f"{column} IS NOT NULL AND {column} NOT IN ({values})"
    if rule == "expect_column_values_to_be_between":
        limit = kwargs.get("min_value", kwargs.get("max_value"))
        bound = _literal if isinstance(limit, int | float) else _timestamp
        parts = []
        if kwargs.get("min_value") is not None:
            parts.append(f"{column} < {bound(kwargs['min_value'])}")
        if kwargs.get("max_value") is not None:
            parts.append(f"{column} > {bound(kwargs['max_value'])}")
        return " OR ".join(parts) or None
    if rule in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        columns = [checked_identifier(c) for c in kwargs.get("column_list") or [column]]
        listed = ", ".join(columns)
        return (
            f"({listed}) IN (SELECT {listed} FROM {table} WHERE _run_id = {run_id_param} "
            f"GROUP BY {listed} HAVING count(*) > 1)"
        )
    if rule == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = checked_identifier(kwargs["column_A"]), checked_identifier(kwargs["column_B"])
        return f"NOT ({a} >= {b})" if kwargs.get("or_equal") else f"NOT ({a} > {b})"
    return None


def hold_rejected_rows(
    warehouse: Warehouse,
    run: RunWindow,
    rejected: list[tuple[str, str, list, Outcome]],
) -> int:
    """Move the rows each failed suite rejected into quarantine; return how many moved.

    `rejected` holds (source, table, the suite's expectations, its outcome) per failed suite.
    """
    moved = 0
    with warehouse.transaction() as tx:
        for source, table, expectations, outcome in rejected:
            failed = {(f.expectation, str(f.column)) for f in outcome.failures}
            for expectation in expectations:
                kwargs = expectation.configuration.kwargs
                column = kwargs.get("column") or kwargs.get("column_list")
                if (expectation.expectation_type, str(column)) not in failed:
                    continue
                predicate = offending_rows_predicate(expectation, table)
                if predicate is not None:
                    moved += _move(tx, source, table, expectation, predicate, run)
    return moved


def _move(tx: Transaction, source: str, table: str, expectation, predicate: str, run) -> int:
    columns = _text_columns(tx, table)
    text = " || '; ' || ".join(f"'{c}=' || coalesce(CAST(t.{c} AS TEXT), 'null')" for c in columns)
    reason = _literal(f"held by the raw gate: {_describe(expectation)}")
    where = f"_run_id = ? AND ({predicate})"
    unique = "unique" in expectation.expectation_type
    params = [run.run_id, run.run_id] if unique else [run.run_id]
    kind = f"held_{table.rsplit('.', 1)[-1]}"
    count = tx.fetchone(f"SELECT count(*) FROM {table} WHERE {where}", params)[0]
    if not count:
        return 0
    tx.execute(
        f"INSERT INTO {QUARANTINE.qualified_name} (source, object_kind, location, raw_text, "
        "reason, content_hash, _pick, _source, _run_id, _loaded_at) "
        f"SELECT ?, ?, ?, {text}, {reason}, md5({text}), ?, ?, ?, current_timestamp "
        f"FROM {table} AS t WHERE {where} AND NOT EXISTS (SELECT 1 FROM "
        f"{QUARANTINE.qualified_name} AS q WHERE q.source = ? AND q.object_kind = ? "
        f"AND q.content_hash = md5({text}))",
        [source, kind, table, table, source, run.run_id, *params, source, kind],
    )
    tx.execute(f"DELETE FROM {table} WHERE {where}", params)
    return count


def _describe(expectation) -> str:
    kwargs = expectation.configuration.kwargs
    column = kwargs.get("column") or kwargs.get("column_list") or ""
    return f"{expectation.expectation_type} on {column}"


def _text_columns(tx: Transaction, table: str) -> list[str]:
    schema, name = table.split(".")
    rows = tx.fetchall(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    )
    skipped = ("raw", "context", "properties", "_source", "_run_id", "_loaded_at")
    return [checked_identifier(c) for (c,) in rows if c not in skipped]
