"""What the no-personal-data suite looks at: every text value about to be published, and
the person names it must not contain (from the raw columns sources declare as names)."""

from __future__ import annotations

from churnhouse.sources import all_raw_tables
from churnhouse.warehouse import Warehouse, checked_identifier

NO_TEXT = "SELECT 'none' AS table_name, 'none' AS column_name, 'none' AS value"


def text_values_sql(warehouse: Warehouse, schema: str) -> str:
    """Every distinct text value of every table of `schema`, as (table, column, value) rows."""
    with warehouse.transaction() as tx:
        columns = tx.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = ? "
            "AND lower(data_type) IN ('varchar', 'text', 'character varying') "
            "ORDER BY table_name, column_name",
            [schema],
        )
    parts = [
        f"SELECT DISTINCT '{checked_identifier(t)}' AS table_name, '{checked_identifier(c)}' AS "
        f"column_name, CAST({c} AS TEXT) AS value FROM {checked_identifier(schema)}.{t} "
        f"WHERE {c} IS NOT NULL"
        for t, c in columns
    ]
    return " UNION ALL ".join(parts) or NO_TEXT


def person_names(warehouse: Warehouse) -> list[str]:
    """Every person name the sources hold (at least 3 characters, to avoid initials)."""
    selects = [
        f"SELECT {checked_identifier(column)} AS name FROM {table.qualified_name} "
        f"WHERE {column} IS NOT NULL"
        for tables in all_raw_tables().values()
        for table in tables
        for column in table.person_name_columns
    ]
    if not selects:
        return []
    with warehouse.transaction() as tx:
        present = {name for (name,) in tx.fetchall(_existing_tables_sql(), [])}
        selects = [s for s in selects if s.split(" FROM ")[1].split(" ")[0] in present]
        rows = tx.fetchall(" UNION ".join(selects)) if selects else []
    return sorted(name for (name,) in rows if len(name.strip()) >= 3)


def _existing_tables_sql() -> str:
    return (
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema = 'raw'"
    )
