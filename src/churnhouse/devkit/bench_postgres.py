"""The bench on PostgreSQL: the same bundle ingested and built there, timed like DuckDB.

`bench_postgres(bundle, as_of)` drops and recreates a database of its own
(`postgresql://postgres@127.0.0.1:5432/pgbench_warehouse`, or
`CHURN_BENCH_POSTGRES_URL`), ingests every source the way `make bench` does on
DuckDB (`ingest(source, run, sources, warehouse)`, extraction included), runs
the full dbt build into `analytics`, checks the marts against the truth and
drops the database again. `make bench` divides these seconds by DuckDB's:
`postgres / duckdb ingest` and `postgres / duckdb dbt`.

When the server cannot be reached it returns a `PostgresBenchSkipped` with a
one-line reason instead, so the bench prints that those lines were skipped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from churnhouse.warehouse import checked_identifier
from churnhouse.warehouse.postgres import libpq_dsn, postgres_settings

URL_SETTING = "CHURN_BENCH_POSTGRES_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/pgbench_warehouse"
CONNECT_TIMEOUT_SECONDS = 3


@dataclass
class PostgresBenchResult:
    """Seconds PostgreSQL took for the bench's ingest (all sources) and full dbt build."""

    ingest_seconds: float
    dbt_seconds: float
    rows_loaded: int
    source_seconds: dict[str, float] = field(default_factory=dict)
    truth_problems: list[str] = field(default_factory=list)

    @property
    def equals_truth(self) -> bool:
        return not self.truth_problems

    def lines(self, duckdb_ingest_seconds: float, duckdb_dbt_seconds: float) -> list[str]:
        """What the bench prints beside DuckDB's numbers (target: each ratio ≤ 3)."""
        truth = "all equal" if self.equals_truth else "; ".join(self.truth_problems[:3])
        return [
            f"postgres ingest {self.rows_loaded:,} rows in {self.ingest_seconds:.1f}s, "
            f"dbt full build {self.dbt_seconds:.1f}s, truth check: {truth}",
            f"postgres / duckdb ingest = {self.ingest_seconds / duckdb_ingest_seconds:.2f} "
            "(target ≤ 3)",
            f"postgres / duckdb dbt = {self.dbt_seconds / duckdb_dbt_seconds:.2f} (target ≤ 3)",
        ]


@dataclass(frozen=True)
class PostgresBenchSkipped:
    """PostgreSQL was not reachable: why, in one line."""

    reason: str

    def lines(self, duckdb_ingest_seconds: float = 0, duckdb_dbt_seconds: float = 0) -> list[str]:
        return [f"postgres lines skipped: {self.reason}"]


def bench_postgres_url(url: str | None = None) -> str:
    return url or os.environ.get(URL_SETTING) or DEFAULT_URL


def bench_postgres(
    bundle: Path, as_of: datetime, url: str | None = None, *, keep: bool = False
) -> PostgresBenchResult | PostgresBenchSkipped:
    """Ingest `bundle` into a fresh PostgreSQL database and build the marts, timed.

    The database named by `url` (else `CHURN_BENCH_POSTGRES_URL`, else
    `pgbench_warehouse` on the local server) is dropped and created first, and
    dropped afterwards unless `keep`.
    """
    url = bench_postgres_url(url)
    unreachable = recreate_database(url)
    if unreachable:
        return PostgresBenchSkipped(unreachable)
    try:
        return _ingest_and_build(Path(bundle), as_of, url)
    finally:
        if not keep:
            drop_database(url)


def _ingest_and_build(bundle: Path, as_of: datetime, url: str) -> PostgresBenchResult:
    from churnhouse.config import sources_for_bundle
    from churnhouse.contracts import RunWindow
    from churnhouse.devkit.acceptance import compare_with_truth
    from churnhouse.ingest import ingest
    from churnhouse.sources import source_names
    from churnhouse.transform import build
    from churnhouse.warehouse import open_warehouse

    warehouse = open_warehouse(url)
    run = RunWindow("bench", as_of - timedelta(days=1), as_of)
    sources = sources_for_bundle(bundle)
    source_seconds, rows_loaded = {}, 0
    for source in source_names():
        started = time.monotonic()
        rows_loaded += ingest(source, run, sources, warehouse).rows_loaded
        source_seconds[source] = time.monotonic() - started  # extraction included
    full = build(url, as_of, marts_schema="analytics", full_refresh=True)
    problems = [
        comparison.describe(limit=1)
        for comparison in compare_with_truth(warehouse, bundle)
        if not comparison.equal
    ]
    return PostgresBenchResult(
        ingest_seconds=sum(source_seconds.values()),
        dbt_seconds=full.seconds,
        rows_loaded=rows_loaded,
        source_seconds=source_seconds,
        truth_problems=problems,
    )


def _admin_connection(url: str):
    """Autocommit connection to the server's `postgres` database (CREATE/DROP DATABASE)."""
    import psycopg2

    settings = postgres_settings(url)
    connection = psycopg2.connect(
        host=settings["CHURN_PG_HOST"],
        port=settings["CHURN_PG_PORT"],
        user=settings["CHURN_PG_USER"],
        password=settings["CHURN_PG_PASSWORD"] or None,
        dbname="postgres",
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    connection.autocommit = True
    return connection


def _database_name(url: str) -> str:
    return checked_identifier(postgres_settings(url)["CHURN_PG_DBNAME"])


def recreate_database(url: str) -> str | None:
    """Drop and create the bench's database; a one-line reason when the server says no."""
    import psycopg2

    name = _database_name(url)
    try:
        connection = _admin_connection(url)
    except psycopg2.OperationalError as error:
        where = libpq_dsn(url).split("@")[-1]  # no credentials in the message
        first_line = (str(error).strip().splitlines() or ["no answer"])[0]
        return f"PostgreSQL at {where} is not reachable: {first_line}"
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            cursor.execute(f"CREATE DATABASE {name}")
    finally:
        connection.close()
    return None


def drop_database(url: str) -> None:
    name = _database_name(url)
    connection = _admin_connection(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        connection.close()
