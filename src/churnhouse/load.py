"""Raw-layer writes: bulk, idempotent, atomic per source, with quarantine and an audit row.

Every source load is one transaction: stage each batch (Arrow or a DuckDB fill,
by the bulk path), merge it into its raw table by key, add the bad records to
`raw._quarantine`, and write the `raw._loads` row. A load that dies half-way
commits nothing; the rerun of the same interval produces the tables a clean run
would.

Merge rules (so that the order of runs never matters):
- `replace`: a copy seen again replaces the stored one (billing objects).
- `keep_lowest` / `keep_highest`: of all copies of a key, the one whose `pick`
  columns compare lowest / highest wins (events keep their first delivery by
  (file, line); survey rows keep the last file in name order).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from churnhouse.contracts import (
    LOADS,
    QUARANTINE,
    RAW_SCHEMA,
    BadRecord,
    BatchInputUnreadable,
    Extracted,
    RawTable,
    RunWindow,
    utc_now,
    with_meta,
)
from churnhouse.warehouse import Transaction, Warehouse

log = logging.getLogger("churnhouse.load")


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


def create_table_sql(table: RawTable) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table.qualified_name} ({table.column_ddl()})"


def ensure_raw_tables(tx: Transaction, tables: Sequence[RawTable]) -> None:
    tx.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for table in (*tables, QUARANTINE, LOADS):
        for each in (table, *table.children):
            tx.execute(create_table_sql(each))
            _add_new_columns(tx, each)


def _add_new_columns(tx: Transaction, table: RawTable) -> None:
    """Columns a newer version added, on a warehouse made before them (nullable, so old
    rows read as unknown until their next re-read)."""
    present = {
        name
        for (name,) in tx.fetchall(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [RAW_SCHEMA, table.name],
        )
    }
    for name, sql_type in table.all_columns.items():
        if name not in present:
            tx.execute(f"ALTER TABLE {table.qualified_name} ADD COLUMN {name} {sql_type}")


def _key_match(key: Sequence[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in key)


# Keys a batch shares with its raw table, and whether the batch's row wins (keep_* merges).
_CLASH = "_merge_clash"


def merge_staged(tx: Transaction, table: RawTable, staged: str) -> None:
    """Merge temp table `staged` into `table` following the table's merge rule (a first
    load into an empty table may take the staged rows' own table instead: adopt_staged)."""
    if table.merge != "replace" and tx.adopt_staged(table, staged):
        return
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
    keys = ", ".join(table.key)
    # The keys both sides hold are found once, by a join the engine builds on the
    # batch's side; the delete and the insert then look only at those. (`NOT EXISTS`
    # against the table made DuckDB hash every key of the table: 12.3M events delivered
    # again over 12.3M took 133-151 s that way, 91-136 s this way.)
    tx.execute(f"DROP TABLE IF EXISTS {_CLASH}")
    tx.execute(
        f"CREATE TEMP TABLE {_CLASH} AS SELECT "
        + ", ".join(f"s.{column}" for column in table.key)
        + f", ({staged_pick}) {order} ({target_pick}) AS batch_wins "
        f"FROM {staged} AS s JOIN {target} AS t ON {match}"
    )
    tx.execute(
        f"DELETE FROM {target} WHERE ({keys}) IN (SELECT {keys} FROM {_CLASH} WHERE batch_wins)"
    )
    tx.execute(
        f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staged} AS s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {_CLASH} AS t WHERE {match} AND NOT t.batch_wins)"
    )
    tx.execute(f"DROP TABLE {_CLASH}")


def quarantine_rows(records: Sequence[BadRecord], source: str, run: RunWindow) -> pa.Table:
    """Arrow batch for `raw._quarantine` from the bad records of one source."""
    import hashlib

    columns: dict[str, list] = {name: [] for name in QUARANTINE.columns}
    for record in records:
        digest = hashlib.sha256(record.raw_text.encode("utf-8", "surrogatepass")).hexdigest()
        columns["source"].append(source)
        columns["object_kind"].append(record.object_kind)
        columns["location"].append(record.location)
        columns["raw_text"].append(record.raw_text)
        columns["reason"].append(record.reason)
        columns["content_hash"].append(digest)
        columns["_pick"].append(record.location)
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


def load_source(
    warehouse: Warehouse, source: str, run: RunWindow, extracted: Extracted
) -> LoadResult:
    """Write one source's batches, quarantine and audit row in one transaction.

    A batch whose input is partly unreadable is loaded again without that part (which
    goes to quarantine): one corrupt file costs that file, not the night.
    """
    started = time.monotonic()
    for _ in range(10):
        try:
            return _load_once(warehouse, source, run, extracted, started)
        except BatchInputUnreadable as unreadable:
            log.warning("%s: %s; loading the rest", source, unreadable)
            batches = [
                unreadable.batch if batch.table == unreadable.batch.table else batch
                for batch in extracted.batches
            ]
            extracted = Extracted(batches, [*extracted.bad, *unreadable.bad])
    raise RuntimeError(f"{source}: gave up after setting aside unreadable inputs 10 times")


def _load_once(
    warehouse: Warehouse, source: str, run: RunWindow, extracted: Extracted, started: float
) -> LoadResult:
    bad = list(extracted.bad)
    parse_ahead = [batch.parse_ahead for batch in extracted.batches if batch.parse_ahead]
    with warehouse.transaction(parse_ahead) as tx:
        ensure_raw_tables(tx, [batch.table for batch in extracted.batches])
        rows_loaded = 0
        for index, batch in enumerate(extracted.batches):
            staged = f"_stage_{index}"
            bad.extend(tx.stage_batch(staged, batch))
            rows_loaded += tx.fetchone(f"SELECT count(*) FROM {staged}")[0]
            merge_staged(tx, batch.table, staged)
            for table in (batch.table, *batch.table.children):
                tx.refresh_statistics(table.qualified_name)
        quarantined = dedupe_quarantine(quarantine_rows(bad, source, run))
        if quarantined.num_rows:
            tx.stage_arrow("_stage_quarantine", QUARANTINE.column_ddl(), quarantined)
            merge_staged(tx, QUARANTINE, "_stage_quarantine")
        seconds = time.monotonic() - started
        blocking = [f"{r.location}: {r.reason}" for r in bad if r.fails_night]
        _record_load(
            tx, run, source, rows_loaded, quarantined.num_rows, seconds, "success", None, blocking
        )
    result = LoadResult(source, rows_loaded, quarantined.num_rows, time.monotonic() - started)
    log.info(result.describe())
    return result


def _record_load(
    tx: Transaction,
    run: RunWindow,
    source: str,
    rows_loaded: int,
    rows_quarantined: int,
    seconds: float,
    status: str,
    message: str | None,
    blocking_files: list[str] | None = None,
) -> None:
    tx.execute(
        f"INSERT INTO {LOADS.qualified_name} (run_id, source, interval_start, interval_end, "
        "rows_loaded, rows_quarantined, seconds, status, message, finished_at, blocking_files, "
        "_source, _run_id, _loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            utc_now(),
            json.dumps(blocking_files, ensure_ascii=False) if blocking_files else None,
            source,
            run.run_id,
            utc_now(),
        ],
    )


def record_failed_load(
    warehouse: Warehouse, run: RunWindow, source: str, seconds: float, error: BaseException
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
