"""A PostgreSQL warehouse.

Publication renames schemas in one transaction: it locks yesterday's tables
(waiting for their readers), renames the published schema away and the audit
schema into its place, and grants the read-only BI role the new one; readers
queued on the lock resolve their names again and see today's tables.

The BI role can read the published schema and nothing else: no raw, audit or
snapshot data, no writes, no DDL. Its name is `CHURN_BI_ROLE` (default
`churn_bi`), its password, when it logs in with one, `CHURN_BI_PASSWORD`.

PostgreSQL 15 cannot deny one role a database (no per-role deny, no login event
triggers): every role may connect to every database through PUBLIC. Confining the
role to the warehouse database (`CHURN_BI_CONFINE_CLUSTER=1`, `churnhouse grant-bi
--confine-cluster`) therefore moves CONNECT on each other database from PUBLIC to
every existing role by name, except the BI role.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from churnhouse.config import scratch_duckdb
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
CONFINE_SETTING = "CHURN_BI_CONFINE_CLUSTER"
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


def confines_cluster() -> bool:
    """`CHURN_BI_CONFINE_CLUSTER` (default off): close the cluster's other databases to the
    BI role whenever the role is ensured (publish, `churnhouse grant-bi`)."""
    return os.environ.get(CONFINE_SETTING, "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class OtherDatabase:
    """A database of the cluster, other than the warehouse's, that accepts connections."""

    name: str
    owner: str
    changeable: bool  # the writer is a superuser or has its owner's privileges
    public_connect: bool
    # PUBLIC, or roles whose privileges the BI role has, holding CONNECT on it
    reachable_through: tuple[str, ...]


@dataclass(frozen=True)
class Confinement:
    """What `PostgresWarehouse.confine_reader_role` changed, and what it could not."""

    role: str
    database: str
    writer: str
    closed: tuple[str, ...]
    granted: tuple[str, ...]
    withheld: tuple[str, ...]  # roles the BI role inherits from: granting them would reach it
    already_closed: tuple[str, ...]
    reachable: tuple[OtherDatabase, ...]

    def describe(self) -> str:
        done = f"closed {', '.join(self.closed) or 'no database'}"
        if self.granted:
            done += f" (CONNECT revoked from PUBLIC, granted by name to {', '.join(self.granted)})"
        withheld = (
            f"; not granted, as {self.role} inherits from them: {', '.join(self.withheld)}"
            if self.withheld
            else ""
        )
        reachable = ", ".join(f"{d.name} ({self._why(d)})" for d in self.reachable) or "none"
        return (
            f"BI role {self.role} confined to database {self.database}: {done}; "
            f"already closed: {', '.join(self.already_closed) or 'none'}{withheld}; "
            f"still reachable: {reachable}"
        )

    def _why(self, database: OtherDatabase) -> str:
        through = ", ".join(database.reachable_through)
        if not database.changeable:
            return (
                f"{through} holds CONNECT; {self.writer} is neither superuser nor its owner "
                f"{database.owner}"
            )
        return f"CONNECT held through {through}"


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
            if batch.parse_ahead:
                batch.parse_ahead(scratch)
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
    def transaction(self, parse_ahead=()) -> Iterator[PostgresTransaction]:
        """Bulk sources parse in a scratch DuckDB while staging (`stage_batch`), so
        `parse_ahead` is run there, not here."""
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
            # Superuser-only unless granted: a writer that merely owns the database publishes
            # too, and then a deadlock may end a reader's statement rather than the publisher's.
            if tx.fetchone("SELECT has_parameter_privilege('deadlock_timeout', 'SET')")[0]:
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

    def ensure_reader_role(
        self, role: str | None = None, *, confine_cluster: bool | None = None
    ) -> str:
        """Create (or fix up) the read-only BI role; returns its name. With `confine_cluster`
        (default: `confines_cluster()`), also close the cluster's other databases to it and
        print one line saying what was closed and what stays reachable."""
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
        if confines_cluster() if confine_cluster is None else confine_cluster:
            print(self.confine_reader_role(role).describe(), flush=True)
        return role

    def confine_reader_role(self, role: str | None = None) -> Confinement:
        """Close every other database the writer may change to the BI role: where the role
        can connect through PUBLIC, CONNECT moves from PUBLIC to every other existing role by
        name, so nothing changes for them; a CONNECT the role holds by name is revoked.
        Idempotent: a database already closed is left alone."""
        role = checked_identifier(role or bi_role())
        with self.transaction() as tx:
            database, writer = tx.fetchone("SELECT current_database(), current_user")
            before = _other_databases(tx, role)
            granted, withheld = _connect_grantees(tx, role)
            closed = [
                d for d in before if d.changeable and {"PUBLIC", role} & {*d.reachable_through}
            ]
            for other in closed:
                _close_to(tx, other, role, granted)
            reachable = [d for d in _other_databases(tx, role) if d.reachable_through]
        return Confinement(
            role=role,
            database=database,
            writer=writer,
            closed=tuple(d.name for d in closed),
            granted=tuple(granted) if any(d.public_connect for d in closed) else (),
            withheld=tuple(withheld),
            already_closed=tuple(d.name for d in before if not d.reachable_through),
            reachable=tuple(reachable),
        )

    def databases_reachable_by(self, role: str) -> list[OtherDatabase]:
        """The cluster's other databases `role` may connect to."""
        with self.transaction() as tx:
            return [d for d in _other_databases(tx, role) if d.reachable_through]


def _other_databases(tx: PostgresTransaction, role: str) -> list[OtherDatabase]:
    rows = tx.fetchall(
        """
        WITH connect AS (
            SELECT d.oid, a.grantee FROM pg_database AS d,
                aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS a
            WHERE a.privilege_type = 'CONNECT'
        )
        SELECT d.datname, pg_get_userbyid(d.datdba),
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                OR pg_has_role(current_user, d.datdba, 'USAGE'),
            EXISTS (SELECT 1 FROM connect AS c WHERE c.oid = d.oid AND c.grantee = 0),
            ARRAY(
                SELECT CASE WHEN c.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(c.grantee) END
                FROM connect AS c
                WHERE c.oid = d.oid AND (c.grantee = 0 OR pg_has_role(?, c.grantee, 'USAGE'))
                ORDER BY 1
            )
        FROM pg_database AS d
        WHERE d.datallowconn AND d.datname <> current_database()
        ORDER BY d.datname
        """,
        [role],
    )
    return [
        OtherDatabase(name, owner, changeable, public, tuple(through))
        for name, owner, changeable, public, through in rows
    ]


def _connect_grantees(tx: PostgresTransaction, role: str) -> tuple[list[str], list[str]]:
    """The roles that stand in for PUBLIC, and those withheld because `role` inherits from them.

    Group (NOLOGIN) roles are included: a role that later joins a group, or a group later
    given LOGIN, connects as it did through PUBLIC. Predefined pg_* roles are not: they
    hold no CONNECT of their own and their members are listed themselves."""
    rows = tx.fetchall(
        "SELECT rolname, pg_has_role(?, oid, 'USAGE') FROM pg_roles "
        "WHERE rolname !~ '^pg_' AND rolname <> ? ORDER BY rolname",
        [role, role],
    )
    granted = [name for name, inherited in rows if not inherited]
    withheld = [name for name, inherited in rows if inherited]
    return granted, withheld


def _close_to(
    tx: PostgresTransaction, other: OtherDatabase, role: str, grantees: list[str]
) -> None:
    from psycopg2.extensions import quote_ident

    name = quote_ident(other.name, tx.connection)
    if other.public_connect:
        tx.execute(f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC")
        if grantees:
            names = ", ".join(quote_ident(grantee, tx.connection) for grantee in grantees)
            tx.execute(f"GRANT CONNECT ON DATABASE {name} TO {names}")
    if role in other.reachable_through:
        tx.execute(f"REVOKE CONNECT ON DATABASE {name} FROM {role}")


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
