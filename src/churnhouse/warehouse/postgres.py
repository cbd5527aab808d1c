"""A PostgreSQL warehouse.

Publication renames schemas in one transaction: it locks yesterday's tables
(waiting for their readers), renames the published schema away and the audit
schema into its place, and grants the read-only BI role the new one; readers
queued on the lock resolve their names again and see today's tables.

The BI role can read the published schema and nothing else: no raw, audit or
snapshot data, no writes, no DDL. Its name is `CHURN_BI_ROLE` (default
`churn_bi`), its password, when it logs in with one, `CHURN_BI_PASSWORD`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from churnhouse.contracts import PUBLISHED_SCHEMA, utc_now
from churnhouse.errors import PermanentError
from churnhouse.warehouse import (
    PUBLICATION_TABLE,
    NothingToPublish,
    Transaction,
    Warehouse,
    checked_identifier,
    create_publication_table,
)

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd
    import pyarrow as pa

    from churnhouse.contracts import BadRecord, Batch

BI_ROLE_SETTING = "CHURN_BI_ROLE"
LOCK_ATTEMPTS = 3
COPY_BATCH_ROWS = 50_000
COPY_READ_BYTES = 1 << 20
DBT_SESSION_OPTIONS = "-c work_mem=64MB -c jit=off"


class PublishBlocked(PermanentError):
    """Readers held yesterday's tables longer than publication may wait for them."""


def _seconds_setting(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def publish_lock_timeout() -> float:
    """`CHURN_PUBLISH_LOCK_TIMEOUT` seconds (default 10) one attempt waits for readers."""
    return _seconds_setting("CHURN_PUBLISH_LOCK_TIMEOUT", 10)


def cancels_readers() -> bool:
    """`CHURN_PUBLISH_CANCEL_READERS` (default on): end BI sessions that hold the tables."""
    return os.environ.get("CHURN_PUBLISH_CANCEL_READERS", "1").lower() not in ("0", "false", "no")


def query_timeout() -> float:
    """`CHURN_QUERY_TIMEOUT` seconds (default 60) a `churnhouse query` statement may run."""
    return _seconds_setting("CHURN_QUERY_TIMEOUT", 60)


def bi_role() -> str | None:
    """The read-only role granted the published schema, if configured."""
    role = os.environ.get(BI_ROLE_SETTING, "churn_bi")
    return checked_identifier(role) if role else None


def libpq_dsn(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+psycopg2)?://", "postgresql://", url)


def postgres_settings(url: str) -> dict[str, str]:
    """CHURN_PG_* settings from a PostgreSQL URL (user, password, host, port, database)."""
    parts = urlsplit(url)
    return {
        "CHURN_PG_HOST": parts.hostname or "127.0.0.1",
        "CHURN_PG_PORT": str(parts.port or 5432),
        "CHURN_PG_USER": unquote(parts.username or "postgres"),
        "CHURN_PG_PASSWORD": unquote(parts.password or ""),
        "CHURN_PG_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
    }


class PostgresTransaction(Transaction):
    def __init__(self, connection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.connection.cursor() as cur:
            cur.execute(_placeholders(sql), params or None)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self.connection.cursor() as cur:
            cur.execute(_placeholders(sql), params or None)
            return cur.fetchall()

    def stage_arrow(self, name: str, column_ddl: str, data: pa.Table) -> None:
        batches = data.to_batches(max_chunksize=COPY_BATCH_ROWS)
        self._stage_batches(name, column_ddl, data.column_names, batches)

    def stage_batch(self, name: str, batch: Batch) -> list[BadRecord]:
        if batch.fill is None:
            self.stage_arrow(name, batch.table.column_ddl(), batch.rows)
            return []
        # A bulk source parses in a scratch DuckDB; its rows stream in batch by batch.
        with scratch_duckdb() as scratch:
            bad = batch.fill(scratch, "scratch_batch")
            schema = batch.table.arrow_schema()
            reader = scratch.sql("FROM scratch_batch").to_arrow_reader(COPY_BATCH_ROWS)
            rows = (each.cast(schema) for each in reader)
            self._stage_batches(name, batch.table.column_ddl(), schema.names, rows)
        return bad

    def refresh_statistics(self, table: str) -> None:
        """ANALYZE now: autovacuum gets to a table a minute or more after a load, and dbt,
        which reads it next, would plan its joins for an empty table."""
        self.execute(f"ANALYZE {table}")

    def _stage_batches(
        self,
        name: str,
        column_ddl: str,
        columns: Sequence[str],
        batches: Iterable[pa.RecordBatch],
    ) -> None:
        """Temp table `name` filled by one binary COPY of `batches`, then analysed: the
        autovacuum never analyses temp tables, and the merge's joins plan from those numbers."""
        from churnhouse.warehouse.postgres_copy import ChunkReader, copy_chunks

        checked_identifier(name)
        column_list = ", ".join(map(checked_identifier, columns))
        with self.connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"CREATE TEMP TABLE {name} ({column_ddl}) ON COMMIT DROP")
            cur.copy_expert(
                f"COPY {name} ({column_list}) FROM STDIN WITH (FORMAT binary)",
                ChunkReader(copy_chunks(batches)),
                size=COPY_READ_BYTES,
            )
            cur.execute(f"ANALYZE {name}")


@contextmanager
def scratch_duckdb() -> Iterator[Any]:
    """An in-memory DuckDB within the warehouse memory limit, spilling to a temp folder."""
    import tempfile

    import duckdb

    from churnhouse.warehouse.duckdb import duckdb_memory_limit

    with tempfile.TemporaryDirectory(prefix="churnhouse-scratch-") as spill:
        connection = duckdb.connect(
            config={"memory_limit": duckdb_memory_limit(), "temp_directory": spill}
        )
        try:
            yield connection
        finally:
            connection.close()


def _placeholders(sql: str) -> str:
    return sql.replace("?", "%s")


class PostgresWarehouse(Warehouse):
    kind = "postgres"

    def __init__(self, url: str):
        self.url = url
        self.validation_sql_url = re.sub(
            r"^postgres(ql)?(\+psycopg2)?://", "postgresql+psycopg2://", url
        )

    def _connect(self, **options: str):
        import psycopg2

        settings = {"TimeZone": "UTC", **options}
        flags = " ".join(f"-c {name}={value}" for name, value in settings.items())
        return psycopg2.connect(libpq_dsn(self.url), options=flags)

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        connection = self._connect()
        try:
            try:
                yield PostgresTransaction(connection)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            connection.close()

    def read_frame(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        import pandas as pd

        with self.transaction() as tx, tx.connection.cursor() as cursor:
            cursor.execute(_placeholders(sql), params or None)
            return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])

    def exclusive(self):
        return nullcontext()  # PostgreSQL serialises its writers itself

    def published_for_dbt(self):
        return nullcontext(self)  # the published schema is in the same database

    def dbt_settings(self) -> dict[str, str]:
        """Also `PGOPTIONS` (libpq's session settings, which dbt-postgres has no profile key
        for): sorts and hashes of the events models in memory instead of on disk, and no JIT
        compilation, which costs a fraction of a second per query for no gain here."""
        options = " ".join(filter(None, [os.environ.get("PGOPTIONS"), DBT_SESSION_OPTIONS]))
        return {
            "CHURN_DBT_TARGET": "postgres",
            "PGOPTIONS": options,
            **postgres_settings(self.url),
        }

    def release_after_dbt(self) -> None:
        """dbt-postgres closes its connections itself."""

    def publish_audit(
        self, audit_schema: str, published_schema: str, run_id: str, as_of: datetime
    ) -> list[str]:
        """The swap waits at most `CHURN_PUBLISH_LOCK_TIMEOUT` for readers per attempt; after
        a wait that timed out it ends the BI sessions holding the tables (unless
        `CHURN_PUBLISH_CANCEL_READERS=0`) and tries again, then fails naming the readers."""
        import psycopg2.errors

        self.ensure_reader_role()
        blockers: list[str] = []
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            try:
                return self._swap_schemas(audit_schema, published_schema, run_id, as_of)
            except psycopg2.errors.DeadlockDetected:
                # Only the publisher gives way (its deadlock_timeout is the shortest), then retries.
                time.sleep(0.2 * attempt)
            except psycopg2.errors.LockNotAvailable:
                blockers = self._readers_holding(published_schema)
                if cancels_readers():
                    self._end_reader_sessions(blockers)
        raise PublishBlocked(
            f"publish could not lock {published_schema} within {publish_lock_timeout():g}s "
            f"x {LOCK_ATTEMPTS}: held by {', '.join(blockers) or 'other sessions'}; "
            "yesterday's tables stay published (CHURN_PUBLISH_LOCK_TIMEOUT, "
            "CHURN_PUBLISH_CANCEL_READERS)"
        )

    def _readers_holding(self, schema: str) -> list[str]:
        """'pid (user, state)' of each other session holding a lock on a table of `schema`."""
        with self.transaction() as tx:
            rows = tx.fetchall(
                "SELECT DISTINCT a.pid, a.usename, a.state FROM pg_locks AS l "
                "JOIN pg_class AS c ON c.oid = l.relation "
                "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
                "JOIN pg_stat_activity AS a ON a.pid = l.pid "
                "WHERE n.nspname = ? AND l.granted AND l.pid <> pg_backend_pid() ORDER BY 1",
                [schema],
            )
        return [f"{pid} ({user}, {state})" for pid, user, state in rows]

    def _end_reader_sessions(self, blockers: list[str]) -> None:
        """End the BI role's sessions among `blockers` (never a writer's)."""
        role = bi_role()
        pids = [int(b.split()[0]) for b in blockers if f"({role}," in b]
        if pids:
            with self.transaction() as tx:
                for pid in pids:
                    tx.execute("SELECT pg_terminate_backend(?)", [pid])

    def _swap_schemas(
        self, audit_schema: str, published_schema: str, run_id: str, as_of: datetime
    ) -> list[str]:
        previous = f"{published_schema}_previous"
        role = bi_role()
        with self.transaction() as tx:
            tx.execute("SET LOCAL deadlock_timeout = '50ms'")
            tx.execute(f"SET LOCAL lock_timeout = '{int(publish_lock_timeout() * 1000)}ms'")
            tables = [t for t in _tables_of(tx, audit_schema) if t != PUBLICATION_TABLE]
            if not tables:
                raise NothingToPublish(f"nothing to publish: schema {audit_schema} holds no tables")
            tx.execute(f"DROP TABLE IF EXISTS {audit_schema}.{PUBLICATION_TABLE}")
            create_publication_table(tx.execute, audit_schema, [run_id, as_of, utc_now()])
            tx.execute(f"DROP SCHEMA IF EXISTS {previous} CASCADE")
            if _schema_exists(tx, published_schema):
                # Wait for the readers of yesterday's tables, and make new readers queue: a
                # statement that resolved one old table cannot then see a new one.
                published = _tables_of(tx, published_schema)
                if published:
                    names = ", ".join(f"{published_schema}.{t}" for t in published)
                    tx.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
                tx.execute(f"ALTER SCHEMA {published_schema} RENAME TO {previous}")
            tx.execute(f"ALTER SCHEMA {audit_schema} RENAME TO {published_schema}")
            if role and _role_exists(tx, role):
                tx.execute(f"GRANT USAGE ON SCHEMA {published_schema} TO {role}")
                tx.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {published_schema} TO {role}")
        with self.transaction() as tx:
            tx.execute(f"DROP SCHEMA IF EXISTS {previous} CASCADE")
        return tables

    def published_as_of(self, published_schema: str) -> datetime | None:
        with self.transaction() as tx:
            if not tx.fetchall(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [published_schema, PUBLICATION_TABLE],
            ):
                return None
            return tx.fetchone(f"SELECT max(as_of) FROM {published_schema}.{PUBLICATION_TABLE}")[0]

    def published_location(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        where = f"{parts.hostname}:{parts.port or 5432}{parts.path}"
        return f"schema {PUBLISHED_SCHEMA} of postgresql://{where}"

    def read_published(self, sql: str) -> tuple[list[str], list[tuple]]:
        """As the read-only BI role (never the writer), in a read-only transaction with the
        published schema first on the search path and a statement timeout."""
        import psycopg2

        parts = urlsplit(libpq_dsn(self.url))
        role = bi_role()
        connection = psycopg2.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
            user=role,
            password=os.environ.get("CHURN_BI_PASSWORD") or None,
            options=(
                f"-c search_path={PUBLISHED_SCHEMA} -c default_transaction_read_only=on "
                f"-c statement_timeout={int(query_timeout() * 1000)}"
            ),
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return [column.name for column in cursor.description], cursor.fetchall()
        finally:
            connection.rollback()
            connection.close()

    def ensure_reader_role(self, role: str | None = None) -> str:
        """Create (or fix up) the read-only BI role; returns its name."""
        role = checked_identifier(role or bi_role())
        password = os.environ.get("CHURN_BI_PASSWORD")
        with self.transaction() as tx:
            if not _role_exists(tx, role):
                tx.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
            if password:
                tx.execute(f"ALTER ROLE {role} PASSWORD ?", [password])
            database = checked_identifier(tx.fetchone("SELECT current_database()")[0])
            tx.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
            tx.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
            # No temporary tables: PUBLIC loses TEMP here, the writer keeps it by name.
            tx.execute(f"GRANT TEMPORARY ON DATABASE {database} TO CURRENT_USER")
            tx.execute(f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC, {role}")
            # A forgotten BI session cannot hold the night's publication for long.
            tx.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
            tx.execute(f"ALTER ROLE {role} SET idle_in_transaction_session_timeout = '5min'")
            tx.execute(f"CREATE SCHEMA IF NOT EXISTS {PUBLISHED_SCHEMA}")
            tx.execute(f"GRANT USAGE ON SCHEMA {PUBLISHED_SCHEMA} TO {role}")
            tx.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {PUBLISHED_SCHEMA} TO {role}")
        return role


def _tables_of(tx: PostgresTransaction, schema: str) -> list[str]:
    rows = tx.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "ORDER BY table_name",
        [checked_identifier(schema)],
    )
    return [checked_identifier(name) for (name,) in rows]


def _schema_exists(tx: PostgresTransaction, schema: str) -> bool:
    return bool(
        tx.fetchall("SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [schema])
    )


def _role_exists(tx: PostgresTransaction, role: str) -> bool:
    return bool(tx.fetchall("SELECT 1 FROM pg_roles WHERE rolname = ?", [role]))
