"""A DuckDB file warehouse.

DuckDB allows one process per file. Parallel Airflow tasks therefore take an
OS file lock beside the database for their short write sections only; their
extraction work runs outside it.

BI tools read a separate *published file* that the writer never holds open:
each night is written to a new file beside it that replaces it by an atomic
rename, so a reader that opened the old file keeps reading it whole and a new
reader gets the new one. The file is written in the storage format of DuckDB 1.2
(`CHURN_DUCKDB_STORAGE_VERSION`), which the DuckDB 1.x drivers of BI tools read;
each table is created from its audit table's columns, so types, NOT NULL
constraints and the table and column comments (dbt `persist_docs`) carry over.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnhouse.config import MEMORY_LIMIT_SETTING, duckdb_memory_limit
from churnhouse.contracts import PARSED_PREFIX, PUBLISHED_SCHEMA, RAW_SCHEMA, utc_now
from churnhouse.warehouse import (
    PUBLICATION_TABLE,
    NothingToPublish,
    Transaction,
    Warehouse,
    checked_identifier,
    comment_sql,
    create_publication_table,
)

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd
    import pyarrow as pa

    from churnhouse.contracts import BadRecord, Batch, RawTable


DBT_MEMORY_LIMIT_SETTING = "CHURN_DBT_DUCKDB_MEMORY_LIMIT"
# dbt runs in the same process and holds ~0.5 GiB of its own (the parsed project): with
# 1.5GB for DuckDB too, the 10,000 x 24 full build peaked at 2,076 MiB RSS.
DEFAULT_DBT_MEMORY_LIMIT = "1.2GB"


def dbt_duckdb_memory_limit() -> str:
    """`CHURN_DBT_DUCKDB_MEMORY_LIMIT`, else an explicit `CHURN_DUCKDB_MEMORY_LIMIT`, else
    1.2GB: DuckDB's share while dbt builds in this process."""
    return (
        os.environ.get(DBT_MEMORY_LIMIT_SETTING)
        or os.environ.get(MEMORY_LIMIT_SETTING)
        or DEFAULT_DBT_MEMORY_LIMIT
    )


def open_duckdb(path: Path):
    """A read-write connection to a DuckDB file, in UTC, within the memory limit."""
    import duckdb

    connection = duckdb.connect(str(path), config={"memory_limit": duckdb_memory_limit()})
    connection.execute("SET TimeZone = 'UTC'")
    return connection


class DuckDBTransaction(Transaction):
    def __init__(self, connection) -> None:
        self.connection = connection
        self._parsed: dict[str, str] = {}  # staged view -> the parsed table behind it

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.connection.execute(sql, params or [])

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.connection.execute(sql, params or []).fetchall()

    def stage_arrow(self, name: str, column_ddl: str, data: pa.Table) -> None:
        """The columns are declared, not copied with `CREATE ... AS FROM t LIMIT 0`:
        in DuckDB 2.0 a table made that way inside a transaction and then filled
        with >100k rows answers filters and joins with no rows (seen here)."""
        checked_identifier(name)
        columns = ", ".join(data.column_names)
        self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({column_ddl})")
        self.connection.register("_arrow_batch", data)
        try:
            self.connection.execute(
                f"INSERT INTO {name} ({columns}) SELECT {columns} FROM _arrow_batch"
            )
        finally:
            self.connection.unregister("_arrow_batch")

    def stage_batch(self, name: str, batch: Batch) -> list[BadRecord]:
        if batch.fill is None:
            self.stage_arrow(name, batch.table.column_ddl(), batch.rows)
            return []
        # Bulk sources parse straight into the warehouse's own connection.
        bad = batch.fill(self.connection, name)
        if batch.parsed:
            self._parsed[name] = batch.parsed
        return bad

    def adopt_staged(self, table: RawTable, staged: str) -> bool:
        """On a first load the parsed table becomes the raw table by a rename, so its
        rows are written once. Only when the raw table is empty and both have the same
        columns, in the same order, of the same types."""
        parsed = self._parsed.get(staged)
        if parsed is None or self.fetchone(f"SELECT EXISTS (FROM {table.qualified_name})")[0]:
            return False
        if _columns(self.connection, parsed) != _columns(self.connection, table.qualified_name):
            return False
        self.execute(f"DROP VIEW {staged}")
        self.execute(f"DROP TABLE {table.qualified_name}")
        self.execute(f"ALTER TABLE {parsed} RENAME TO {table.name}")
        del self._parsed[staged]
        return True

    def refresh_statistics(self, table: str) -> None:
        """Nothing to do: DuckDB updates its statistics as it writes."""


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"

    def __init__(self, url: str):
        self.url = url
        self.path = Path(url.removeprefix("duckdb:///")).resolve()
        self._held = None  # the connection `held()` keeps open

    @property
    def published_path(self) -> Path:
        """The file BI tools read: `CHURN_PUBLISHED_PATH` or `<warehouse>.published.duckdb`."""
        configured = os.environ.get("CHURN_PUBLISHED_PATH")
        if configured:
            return Path(configured).resolve()
        return self.path.with_name(self.path.stem + ".published.duckdb")

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Serialise the processes that open this DuckDB file (one at a time may)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(self.path.suffix + ".lock"), "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    exclusive = writer_lock

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A plain connection (no transaction opened) under the writer lock; inside
        `held()`, the held one."""
        if self._held is not None:
            yield self._held
            return
        with self.writer_lock():
            connection = open_duckdb(self.path)
            try:
                yield connection
            finally:
                connection.close()

    @contextmanager
    def held(self) -> Iterator[None]:
        """One connection (and the writer lock) for everything inside: opening the file
        reads its catalog each time, 5-15 ms on a warehouse of a few hundred tables."""
        if self._held is not None:
            yield
            return
        with self.connection() as connection:
            self._held = connection
            try:
                yield
            finally:
                self._held = None

    @contextmanager
    def transaction(
        self, parse_ahead: Sequence[Callable[[Any], None]] = ()
    ) -> Iterator[DuckDBTransaction]:
        """`parse_ahead` runs first, under the same writer lock; what it parsed is dropped
        with the transaction, committed or not (a killed process's, by the next one)."""
        with self.connection() as connection:
            _drop_parsed_tables(connection)
            try:
                for parse in parse_ahead:
                    parse(connection)
                connection.execute("BEGIN TRANSACTION")
            except BaseException:
                _drop_parsed_tables(connection)
                raise
            try:
                yield DuckDBTransaction(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                _drop_parsed_tables(connection)
                raise
            _drop_parsed_tables(connection)
            connection.execute("COMMIT")

    def read_frame(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self.connection() as connection:
            return connection.execute(sql, params or []).df()

    def dbt_settings(self) -> dict[str, str]:
        return {
            "CHURN_DBT_TARGET": "duckdb",
            "CHURN_DBT_DUCKDB_PATH": str(self.path),
            MEMORY_LIMIT_SETTING: dbt_duckdb_memory_limit(),
        }

    def release_after_dbt(self) -> None:
        """Close the database dbt-duckdb keeps open for the life of the process.

        Without this the file stays held after dbt returns and no other process
        (the next Airflow task, a BI reader) can open it.
        """
        try:
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        except ImportError:  # dbt-duckdb not installed: nothing was opened
            return
        with DuckDBConnectionManager._LOCK:
            environment = DuckDBConnectionManager._ENV
            DuckDBConnectionManager._ENV = None
            if environment is not None:
                environment.close()

    def publish_audit(
        self, audit_schema: str, published_schema: str, run_id: str, as_of: datetime
    ) -> list[str]:
        target = self.published_path
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        staging.unlink(missing_ok=True)
        with self.connection() as con:
            tables = [t for t in _tables_of(con, audit_schema) if t != PUBLICATION_TABLE]
            if not tables:
                raise NothingToPublish(f"nothing to publish: schema {audit_schema} holds no tables")
            con.execute(
                f"ATTACH '{staging}' AS published_copy (STORAGE_VERSION '{storage_version()}')"
            )
            try:
                _copy_tables(con, tables, audit_schema, f"published_copy.{published_schema}")
                create_publication_table(
                    con.execute,
                    f"published_copy.{published_schema}",
                    [run_id, as_of, utc_now()],
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

    def published_as_of(self, published_schema: str) -> datetime | None:
        return _publication_as_of(self.published_path, published_schema)

    def published_location(self) -> str:
        return f"{self.published_path} (schema {PUBLISHED_SCHEMA})"

    @contextmanager
    def published_for_dbt(self) -> Iterator[DuckDBWarehouse]:
        """A throwaway copy of the published file named like the working file (dbt names the
        database after the file), so dbt never holds the file BI tools read; before the first
        publish, the working file itself."""
        import shutil
        import tempfile

        if not self.published_path.exists():
            yield self
            return
        with tempfile.TemporaryDirectory(prefix="churnhouse-published-") as folder:
            copy = Path(folder) / self.path.name
            shutil.copyfile(self.published_path, copy)
            yield DuckDBWarehouse(str(copy))

    def read_published(self, sql: str) -> tuple[list[str], list[tuple]]:
        """The published file, read-only, external access off: the working file is never
        touched, so a query never waits for the night."""
        import duckdb

        path = self.published_path
        if not path.exists():
            raise FileNotFoundError(
                f"nothing published yet: {path} does not exist (run a night first)"
            )
        with duckdb.connect(str(path), read_only=True) as con:
            con.execute(f"SET search_path = '{PUBLISHED_SCHEMA}'")
            con.execute("SET enable_external_access = false")
            cursor = con.execute(sql)
            return [column[0] for column in cursor.description], cursor.fetchall()


def _drop_parsed_tables(connection) -> None:
    """The tables loads parsed into (`raw._parsed_*`) that no load renamed into place."""
    for (table,) in connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
        "AND starts_with(table_name, ?) AND NOT temporary",
        [RAW_SCHEMA, PARSED_PREFIX],
    ).fetchall():
        connection.execute(f'DROP TABLE {RAW_SCHEMA}."{table}"')


def _columns(connection, qualified_name: str) -> list[tuple]:
    schema, name = qualified_name.split(".")
    return connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()


def _publication_as_of(path: Path, schema: str):
    import duckdb

    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(f"SELECT max(as_of) FROM {schema}.{PUBLICATION_TABLE}").fetchone()
    return row[0] if row else None


def _tables_of(con, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ? ORDER BY table_name",
        [schema],
    ).fetchall()
    return [checked_identifier(name) for (name,) in rows]


STORAGE_VERSION_SETTING = "CHURN_DUCKDB_STORAGE_VERSION"
# The oldest format current DuckDB 1.x readers take (DuckDB 2.x writes one they cannot open).
DEFAULT_STORAGE_VERSION = "v1.2.0"
_STORAGE_VERSION = re.compile(r"v\d+\.\d+\.\d+|latest")


def storage_version() -> str:
    """DuckDB storage format of the published file: `CHURN_DUCKDB_STORAGE_VERSION` or v1.2.0."""
    version = os.environ.get(STORAGE_VERSION_SETTING) or DEFAULT_STORAGE_VERSION
    if not _STORAGE_VERSION.fullmatch(version):
        raise ValueError(
            f"{STORAGE_VERSION_SETTING}={version!r}: expected a DuckDB version like v1.2.0"
        )
    return version


def _copy_tables(con, tables: list[str], source_schema: str, target_schema: str) -> None:
    con.execute("BEGIN TRANSACTION")
    con.execute(f"CREATE SCHEMA {target_schema}")
    for table in tables:
        _copy_table(con, source_schema, table, f"{target_schema}.{table}")


def _copy_table(con, source_schema: str, table: str, target: str) -> None:
    """Create `target` with the source table's column types, NOT NULLs and comments, then
    fill it (a CREATE TABLE AS would keep the types only)."""
    columns = con.execute(
        "SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? "
        "ORDER BY column_index",
        [source_schema, table],
    ).fetchall()
    definitions = ", ".join(
        f'"{name}" {data_type}{"" if nullable else " NOT NULL"}'
        for name, data_type, nullable, _ in columns
    )
    con.execute(f"CREATE TABLE {target} ({definitions})")
    con.execute(f"INSERT INTO {target} SELECT * FROM {source_schema}.{table}")
    (table_comment,) = con.execute(
        "SELECT comment FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = ? AND table_name = ?",
        [source_schema, table],
    ).fetchone()
    if table_comment:
        con.execute(comment_sql(target, None, table_comment))
    for name, _, _, comment in columns:
        if comment:
            con.execute(comment_sql(target, name, comment))


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
