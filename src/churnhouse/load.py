"""Raw-layer writes: bulk, idempotent, atomic per source, with quarantine and an audit row.

Every source load is one transaction: stage the batch (Arrow → bulk path), merge
it into the raw tables by their keys, add its bad records to `raw._quarantine`,
and write its `raw._loads` row. A load that dies half-way commits nothing; the
rerun of the same interval produces the tables a clean run would.

Merge rules (so that the order of runs never matters):
- `replace`: a copy seen again replaces the stored one (billing objects).
- `keep_lowest` / `keep_highest`: of all copies of a key, the one with the
  lowest / highest `_pick` wins (events keep their first delivery; survey rows
  keep the last file in name order).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from churnhouse.warehouse import Transaction, Warehouse, qualified

log = logging.getLogger("churnhouse.load")

RAW_SCHEMA = "raw"
META_COLUMNS = {"_source": "TEXT", "_run_id": "TEXT", "_loaded_at": "TIMESTAMP"}


@dataclass(frozen=True)
class RawTable:
    """A raw-layer table: its columns (portable SQL types), key and merge rule."""

    name: str
    columns: dict[str, str]
    key: tuple[str, ...]
    merge: str = "replace"  # replace | keep_lowest | keep_highest (on the `pick` columns)
    # Compared as a row when two copies of a key meet: (file, line) for events.
    pick: tuple[str, ...] = ("_pick",)
    # Replaced with their parent: a child's first key column holds the parent's key.
    children: tuple[RawTable, ...] = field(default=())

    @property
    def qualified_name(self) -> str:
        return qualified(RAW_SCHEMA, self.name)

    @property
    def all_columns(self) -> dict[str, str]:
        return {**self.columns, **META_COLUMNS}

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, _ARROW_TYPES[sql]) for name, sql in self.all_columns.items()])


_ARROW_TYPES = {
    "TEXT": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE PRECISION": pa.float64(),
    "TIMESTAMP": pa.timestamp("us"),
    "DATE": pa.date32(),
}

QUARANTINE = RawTable(
    "_quarantine",
    {
        "source": "TEXT",
        "object_kind": "TEXT",
        "location": "TEXT",
        "raw_text": "TEXT",
        "reason": "TEXT",
        "content_hash": "TEXT",
        "_pick": "TEXT",
    },
    key=("source", "object_kind", "content_hash"),
    merge="keep_lowest",
)

LOADS = RawTable(
    "_loads",
    {
        "run_id": "TEXT",
        "source": "TEXT",
        "interval_start": "TIMESTAMP",
        "interval_end": "TIMESTAMP",
        "rows_loaded": "BIGINT",
        "rows_quarantined": "BIGINT",
        "seconds": "DOUBLE PRECISION",
        "status": "TEXT",
        "message": "TEXT",
        "finished_at": "TIMESTAMP",
    },
    key=(),
)


@dataclass(frozen=True)
class RunInfo:
    """Which run, for which data interval."""

    run_id: str
    interval_start: datetime
    interval_end: datetime


@dataclass
class Batch:
    """What one extractor produced for one raw table.

    Either `rows` (Arrow), or `fill`: a function that parses the source inside a
    DuckDB connection into a temp table and returns the bad records it found.
    On a DuckDB warehouse `fill` runs on the warehouse's own connection, so bulk
    sources never leave DuckDB; elsewhere it runs in a scratch DuckDB and the
    result is staged as Arrow.
    """

    table: RawTable
    rows: pa.Table | None = None
    fill: Callable[[Any, str], list[dict]] | None = None


@dataclass
class LoadResult:
    source: str
    rows_loaded: int
    rows_quarantined: int
    seconds: float

    def describe(self) -> str:
        return (
            f"{self.source}: {self.rows_loaded} rows loaded, "
            f"{self.rows_quarantined} quarantined in {self.seconds:.1f}s"
        )


def column_ddl(table: RawTable) -> str:
    return ", ".join(f"{name} {sql}" for name, sql in table.all_columns.items())


def create_table_sql(table: RawTable) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table.qualified_name} ({column_ddl(table)})"


def ensure_raw_tables(tx: Transaction, tables: Sequence[RawTable]) -> None:
    tx.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for table in (*tables, QUARANTINE, LOADS):
        tx.execute(create_table_sql(table))
        for child in table.children:
            tx.execute(create_table_sql(child))


def with_meta(
    table: RawTable, columns: dict[str, list | pa.Array], source: str, run: RunInfo
) -> pa.Table:
    """Build the Arrow batch for `table` from column lists, adding the meta columns."""
    length = len(next(iter(columns.values()))) if columns else 0
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    full = {
        **columns,
        "_source": [source] * length,
        "_run_id": [run.run_id] * length,
        "_loaded_at": [loaded_at] * length,
    }
    schema = table.arrow_schema()
    return pa.table({name: full[name] for name in schema.names}, schema=schema)


def _key_match(key: Sequence[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in key)


def merge_staged(tx: Transaction, table: RawTable, staged: str) -> None:
    """Merge temp table `staged` into `table` following the table's merge rule."""
    target = table.qualified_name
    match = _key_match(table.key, "t", "s")
    columns = ", ".join(table.all_columns)
    if table.merge == "replace":
        for child in table.children:
            # A child's first key column holds its parent's id (invoice_id → invoices.id).
            child_match = f"c.{child.key[0]} = s.{table.key[0]}"
            tx.execute(
                f"DELETE FROM {child.qualified_name} AS c WHERE EXISTS "
                f"(SELECT 1 FROM {staged} AS s WHERE {child_match})"
            )
        tx.execute(
            f"DELETE FROM {target} AS t WHERE EXISTS (SELECT 1 FROM {staged} AS s WHERE {match})"
        )
        tx.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staged}")
        return
    staged_pick = ", ".join(f"s.{column}" for column in table.pick)
    target_pick = ", ".join(f"t.{column}" for column in table.pick)
    order = "<" if table.merge == "keep_lowest" else ">"
    better = f"({staged_pick}) {order} ({target_pick})"
    tx.execute(
        f"DELETE FROM {target} AS t WHERE EXISTS "
        f"(SELECT 1 FROM {staged} AS s WHERE {match} AND {better})"
    )
    tx.execute(
        f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staged} AS s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match})"
    )


def quarantine_rows(records: Sequence[dict], source: str, run: RunInfo) -> pa.Table:
    """Arrow batch for `raw._quarantine` from dicts with object_kind, location, raw_text, reason."""
    import hashlib

    columns: dict[str, list] = {name: [] for name in QUARANTINE.columns}
    for record in records:
        digest = hashlib.sha256(record["raw_text"].encode("utf-8", "surrogatepass")).hexdigest()
        columns["source"].append(source)
        columns["object_kind"].append(record["object_kind"])
        columns["location"].append(record["location"])
        columns["raw_text"].append(record["raw_text"])
        columns["reason"].append(record["reason"])
        columns["content_hash"].append(digest)
        columns["_pick"].append(record["location"])
    return with_meta(QUARANTINE, columns, source, run)


def dedupe_quarantine(rows: pa.Table) -> pa.Table:
    """One row per (source, kind, content), keeping the lowest location."""
    if rows.num_rows == 0:
        return rows
    import duckdb

    con = duckdb.connect()
    con.register("q", rows)
    return con.sql(
        "SELECT * FROM q QUALIFY row_number() OVER "
        "(PARTITION BY source, object_kind, content_hash ORDER BY _pick) = 1"
    ).to_arrow_table()


def _stage_batch(tx: Transaction, batch: Batch, staged: str) -> tuple[int, list[dict]]:
    """Stage one batch as temp table `staged`; return its row count and any bad records."""
    bad: list[dict] = []
    if batch.fill is None:
        tx.stage_arrow(staged, column_ddl(batch.table), batch.rows)
    elif tx.kind == "duckdb":
        bad = batch.fill(tx.connection, staged)
    else:
        import duckdb

        scratch = duckdb.connect()
        bad = batch.fill(scratch, "scratch_batch")
        rows = scratch.sql("FROM scratch_batch").to_arrow_table().cast(batch.table.arrow_schema())
        tx.stage_arrow(staged, column_ddl(batch.table), rows)
    return tx.fetchone(f"SELECT count(*) FROM {staged}")[0], bad


def load_source(
    warehouse: Warehouse,
    source: str,
    run: RunInfo,
    batches: Sequence[Batch],
    bad: Sequence[dict],
) -> LoadResult:
    """Write one source's batches, quarantine and audit row in one transaction."""
    started = time.monotonic()
    bad = list(bad)
    with warehouse.transaction() as tx:
        ensure_raw_tables(tx, [batch.table for batch in batches])
        rows_loaded = 0
        for index, batch in enumerate(batches):
            staged = f"_stage_{index}"
            count, batch_bad = _stage_batch(tx, batch, staged)
            rows_loaded += count
            bad.extend(batch_bad)
            merge_staged(tx, batch.table, staged)
        quarantined = dedupe_quarantine(quarantine_rows(bad, source, run))
        if quarantined.num_rows:
            tx.stage_arrow("_stage_quarantine", column_ddl(QUARANTINE), quarantined)
            merge_staged(tx, QUARANTINE, "_stage_quarantine")
        seconds = time.monotonic() - started
        _record_load(tx, run, source, rows_loaded, quarantined.num_rows, seconds, "success", None)
    result = LoadResult(source, rows_loaded, quarantined.num_rows, time.monotonic() - started)
    log.info(result.describe())
    return result


def _record_load(
    tx: Transaction,
    run: RunInfo,
    source: str,
    rows_loaded: int,
    rows_quarantined: int,
    seconds: float,
    status: str,
    message: str | None,
) -> None:
    tx.execute(
        f"INSERT INTO {LOADS.qualified_name} (run_id, source, interval_start, interval_end, "
        "rows_loaded, rows_quarantined, seconds, status, message, finished_at, _source, _run_id, "
        "_loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id,
            source,
            run.interval_start,
            run.interval_end,
            rows_loaded,
            rows_quarantined,
            round(seconds, 3),
            status,
            message,
            datetime.now(UTC).replace(tzinfo=None),
            source,
            run.run_id,
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )


def record_failed_load(
    warehouse: Warehouse, run: RunInfo, source: str, seconds: float, error: BaseException
) -> None:
    """Audit a failed load in its own transaction (the load itself rolled back)."""
    try:
        with warehouse.transaction() as tx:
            ensure_raw_tables(tx, [])
            _record_load(tx, run, source, 0, 0, seconds, "failed", str(error)[:2000])
    except Exception:  # the warehouse itself may be what failed
        log.exception("could not record the failed %s load", source)


def last_successful_load(warehouse: Warehouse, source: str) -> datetime | None:
    """End of the latest successful interval for `source`, or None on an empty warehouse."""
    with warehouse.transaction() as tx:
        ensure_raw_tables(tx, [])
        row = tx.fetchone(
            f"SELECT max(interval_end) FROM {LOADS.qualified_name} "
            "WHERE source = ? AND status = 'success'",
            [source],
        )
    return row[0] if row else None
