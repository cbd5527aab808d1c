"""The one place that opens the warehouse: a DuckDB file or a PostgreSQL database.

Both engines are driven through the same small interface so the loaders have
one code path: a `Transaction` that runs portable SQL and bulk-stages Arrow
tables (DuckDB: a registered Arrow view; PostgreSQL: `COPY ... FROM STDIN`).

DuckDB allows one writer process per file. Parallel Airflow tasks therefore
take an OS file lock beside the database for the short write section only;
their extraction work runs outside it.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class UnsafeIdentifierError(ValueError):
    """A schema/table/column name from configuration that is not a plain identifier."""


def checked_identifier(name: str) -> str:
    """Return `name` when it is a plain SQL identifier, else refuse it."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise UnsafeIdentifierError(
            f"refusing identifier {name!r}: only letters, digits and _ (not first), at most 63"
        )
    return name


def qualified(schema: str, table: str) -> str:
    return f"{checked_identifier(schema)}.{checked_identifier(table)}"


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://"))


def _libpq_dsn(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+psycopg2)?://", "postgresql://", url)


@dataclass
class Transaction:
    """One open transaction on the warehouse."""

    kind: str
    connection: Any

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if self.kind == "duckdb":
            self.connection.execute(sql, params or [])
        else:
            with self.connection.cursor() as cur:
                cur.execute(_pg_placeholders(sql), params or None)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        if self.kind == "duckdb":
            return self.connection.execute(sql, params or []).fetchall()
        with self.connection.cursor() as cur:
            cur.execute(_pg_placeholders(sql), params or None)
            return cur.fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def stage_arrow(self, name: str, column_ddl: str, data: pa.Table) -> None:
        """Create temp table `name` (`column_ddl`) holding `data`, by the bulk path.

        The columns are declared, not copied with `CREATE ... AS FROM t LIMIT 0`:
        in DuckDB 2.0 a table made that way inside a transaction and then filled
        with >100k rows answers filters and joins with no rows (seen here).
        """
        checked_identifier(name)
        columns = ", ".join(data.column_names)
        if self.kind == "duckdb":
            self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({column_ddl})")
            self.connection.register("_arrow_batch", data)
            try:
                self.connection.execute(
                    f"INSERT INTO {name} ({columns}) SELECT {columns} FROM _arrow_batch"
                )
            finally:
                self.connection.unregister("_arrow_batch")
            return
        with self.connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"CREATE TEMP TABLE {name} ({column_ddl}) ON COMMIT DROP")
            if data.num_rows:
                cur.copy_expert(
                    f"COPY {name} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER false)",
                    _arrow_to_csv(data),
                )


def _pg_placeholders(sql: str) -> str:
    return sql.replace("?", "%s")


def _arrow_to_csv(data: pa.Table) -> io.BytesIO:
    import pyarrow.csv as pacsv

    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    buffer.seek(0)
    return buffer


def duckdb_memory_limit() -> str:
    """`CHURN_DUCKDB_MEMORY_LIMIT` (default 4GB): DuckDB spills beyond it to `<file>.tmp/`.

    Without a limit DuckDB may take 80% of the machine's memory for one night's load.
    """
    return os.environ.get("CHURN_DUCKDB_MEMORY_LIMIT", "4GB")


def open_duckdb(path: Path):
    """A read-write connection to the warehouse file, in UTC, within the memory limit."""
    import duckdb

    connection = duckdb.connect(str(path), config={"memory_limit": duckdb_memory_limit()})
    connection.execute("SET TimeZone = 'UTC'")
    return connection


class Warehouse:
    """A configured warehouse; `transaction()` opens it for one unit of work."""

    def __init__(self, url: str):
        self.url = url
        self.kind = "postgres" if is_postgres_url(url) else "duckdb"
        if self.kind == "duckdb":
            self.path = Path(url.removeprefix("duckdb:///")).resolve()

    def __repr__(self) -> str:  # never print credentials
        return f"Warehouse(kind={self.kind!r})"

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Open, BEGIN, yield, COMMIT (ROLLBACK on any error), close."""
        if self.kind == "duckdb":
            with self.writer_lock():
                yield from self._duckdb_transaction()
        else:
            yield from self._postgres_transaction()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A plain DuckDB connection (no transaction opened) under the writer lock."""
        if self.kind != "duckdb":
            raise TypeError("connection() is for DuckDB warehouses; use transaction()")
        with self.writer_lock():
            connection = open_duckdb(self.path)
            try:
                yield connection
            finally:
                connection.close()

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

    def _duckdb_transaction(self) -> Iterator[Transaction]:
        connection = open_duckdb(self.path)
        try:
            connection.execute("BEGIN TRANSACTION")
            try:
                yield Transaction("duckdb", connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def _postgres_transaction(self) -> Iterator[Transaction]:
        import psycopg2

        connection = psycopg2.connect(_libpq_dsn(self.url), options="-c TimeZone=UTC")
        try:
            try:
                yield Transaction("postgres", connection)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            connection.close()


def open_warehouse(url: str | None = None) -> Warehouse:
    """The warehouse named by `url`, else by the `CHURN_WAREHOUSE` setting."""
    from churnhouse.config import warehouse_url

    return Warehouse(url or warehouse_url())
