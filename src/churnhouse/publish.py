"""Write-audit-publish: the night's marts are built in an audit schema, checked, then
published all together, atomically. Readers see all of yesterday or all of today.

- PostgreSQL: one transaction locks yesterday's tables (waiting for their
  readers), renames the published schema away and the audit schema into its
  place, and grants the read-only BI role the new one; readers queued on the
  lock resolve their names again and see today's tables. The previous tables
  are dropped afterwards.
- DuckDB: one process may hold a DuckDB file, so BI tools read a separate
  published file that the writer never holds open. The writer builds a new file
  beside it and renames it over the old one (`os.replace`, atomic on POSIX):
  a reader that opened the old file keeps reading it whole, a new reader gets
  the new one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from churnhouse.warehouse import Warehouse, checked_identifier

AUDIT_SCHEMA = "analytics_audit"
PUBLISHED_SCHEMA = "analytics"
PUBLICATION_TABLE = "_publication"
BI_ROLE_SETTING = "CHURN_BI_ROLE"


@dataclass(frozen=True)
class Publication:
    run_id: str
    tables: tuple[str, ...]
    seconds: float

    def describe(self) -> str:
        return f"published {len(self.tables)} tables for run {self.run_id} in {self.seconds:.1f}s"


def published_path(warehouse: Warehouse) -> Path:
    """The DuckDB file BI tools read: `CHURN_PUBLISHED_PATH` or `<warehouse>.published.duckdb`."""
    configured = os.environ.get("CHURN_PUBLISHED_PATH")
    if configured:
        return Path(configured).resolve()
    return warehouse.path.with_name(warehouse.path.stem + ".published.duckdb")


def bi_role() -> str | None:
    """The read-only role to grant the published schema to (PostgreSQL), if configured."""
    role = os.environ.get(BI_ROLE_SETTING, "churn_bi")
    return checked_identifier(role) if role else None


def audit_tables(tx, schema: str = AUDIT_SCHEMA) -> list[str]:
    rows = tx.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "ORDER BY table_name",
        [checked_identifier(schema)],
    )
    return [checked_identifier(name) for (name,) in rows]


def publish(warehouse: Warehouse, run_id: str, as_of: datetime) -> Publication:
    """Publish every table of the audit schema at once; raise if there is nothing to publish."""
    started = time.monotonic()
    if warehouse.kind == "duckdb":
        tables = _publish_duckdb(warehouse, run_id, as_of)
    else:
        tables = _publish_postgres(warehouse, run_id, as_of)
    publication = Publication(run_id, tuple(tables), time.monotonic() - started)
    print(publication.describe(), flush=True)
    return publication


def _publication_row_sql(schema: str) -> str:
    return (
        f"CREATE TABLE {schema}.{PUBLICATION_TABLE} AS SELECT "
        "CAST(? AS TEXT) AS run_id, CAST(? AS TIMESTAMP) AS as_of, "
        "CAST(? AS TIMESTAMP) AS published_at"
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _publish_duckdb(warehouse: Warehouse, run_id: str, as_of: datetime) -> list[str]:
    target = published_path(warehouse)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    with warehouse.connection() as con:
        tables = [t for t in _duckdb_audit_tables(con) if t != PUBLICATION_TABLE]
        if not tables:
            raise RuntimeError(f"nothing to publish: schema {AUDIT_SCHEMA} holds no tables")
        con.execute(f"ATTACH '{staging}' AS published_copy")
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(f"CREATE SCHEMA published_copy.{PUBLISHED_SCHEMA}")
            for table in tables:
                con.execute(
                    f"CREATE TABLE published_copy.{PUBLISHED_SCHEMA}.{table} AS "
                    f"SELECT * FROM {AUDIT_SCHEMA}.{table}"
                )
            con.execute(
                _publication_row_sql(f"published_copy.{PUBLISHED_SCHEMA}"), [run_id, as_of, _now()]
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            con.execute("DETACH published_copy")
            staging.unlink(missing_ok=True)
            raise
        con.execute("DETACH published_copy")
    os.replace(staging, target)
    _fsync_folder(target.parent)
    return tables


def _duckdb_audit_tables(con) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ? ORDER BY table_name",
        [AUDIT_SCHEMA],
    ).fetchall()
    return [checked_identifier(name) for (name,) in rows]


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _publish_postgres(warehouse: Warehouse, run_id: str, as_of: datetime) -> list[str]:
    import psycopg2.errors

    for attempt in range(1, 6):
        try:
            return _swap_postgres_schemas(warehouse, run_id, as_of)
        except psycopg2.errors.DeadlockDetected:
            # Only the publisher gives way (its deadlock_timeout is the shortest), then retries.
            if attempt == 5:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _swap_postgres_schemas(warehouse: Warehouse, run_id: str, as_of: datetime) -> list[str]:
    previous = f"{PUBLISHED_SCHEMA}_previous"
    role = bi_role()
    with warehouse.transaction() as tx:
        tx.execute("SET LOCAL deadlock_timeout = '50ms'")
        tables = [t for t in audit_tables(tx) if t != PUBLICATION_TABLE]
        if not tables:
            raise RuntimeError(f"nothing to publish: schema {AUDIT_SCHEMA} holds no tables")
        tx.execute(f"DROP TABLE IF EXISTS {AUDIT_SCHEMA}.{PUBLICATION_TABLE}")
        tx.execute(_publication_row_sql(AUDIT_SCHEMA), [run_id, as_of, _now()])
        tx.execute(f"DROP SCHEMA IF EXISTS {previous} CASCADE")
        if _schema_exists(tx, PUBLISHED_SCHEMA):
            # Wait for the readers of yesterday's tables, and make new readers queue: a
            # statement that resolved one old table cannot then see a new one.
            published = audit_tables(tx, PUBLISHED_SCHEMA)
            if published:
                names = ", ".join(f"{PUBLISHED_SCHEMA}.{t}" for t in published)
                tx.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            tx.execute(f"ALTER SCHEMA {PUBLISHED_SCHEMA} RENAME TO {previous}")
        tx.execute(f"ALTER SCHEMA {AUDIT_SCHEMA} RENAME TO {PUBLISHED_SCHEMA}")
        if role and _role_exists(tx, role):
            tx.execute(f"GRANT USAGE ON SCHEMA {PUBLISHED_SCHEMA} TO {role}")
            tx.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {PUBLISHED_SCHEMA} TO {role}")
    with warehouse.transaction() as tx:
        tx.execute(f"DROP SCHEMA IF EXISTS {previous} CASCADE")
    return tables


def _schema_exists(tx, schema: str) -> bool:
    return bool(
        tx.fetchall("SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [schema])
    )


def _role_exists(tx, role: str) -> bool:
    return bool(tx.fetchall("SELECT 1 FROM pg_roles WHERE rolname = ?", [role]))
