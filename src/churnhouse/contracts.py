"""The types that pass between stages, below everything else in the package.

A source's extractor returns `Extracted` (batches for its `RawTable`s plus the
`BadRecord`s it found) for an `ExtractWindow`; the loader writes them; the gates,
dbt and publish work on the schemas named here. Nothing in this module opens a
connection or imports a heavy library at import time (the DAG file imports it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

RAW_SCHEMA = "raw"
AUDIT_SCHEMA = "analytics_audit"
PUBLISHED_SCHEMA = "analytics"
# Tables a bulk source parses into, in the raw schema beside the table they fill
# (`raw._parsed_events`). On DuckDB they are written and committed just before the load's
# transaction opens, under the same writer lock: numbering the rows of committed rows is
# cheap, of rows inside an open transaction it is not. Every transaction drops what is
# left of them (after a killed process, the next one), and a first load into an empty raw
# table renames its parsed table into place instead of copying it (load.merge_staged).
PARSED_PREFIX = "_parsed_"
META_COLUMNS = {"_source": "TEXT", "_run_id": "TEXT", "_loaded_at": "TIMESTAMP"}

# The marts a night publishes (one Airflow Asset each); a test holds this list
# equal to the models in dbt_project/models/marts/.
PUBLISHED_MARTS = (
    "churn_monthly",
    "churn_events",
    "churn_reasons",
    "cancel_saves",
    "dim_customers",
    "fct_customer_mrr_monthly",
    "engagement_monthly",
    "nps_monthly",
    "identity_unmatched",
    "customer_health",
    "customer_health_monthly",
    "risk_backtest",
    "churn_drivers",
    "loyalty_spend_segments",
    "cohort_retention",
    "customer_ltv",
    "revenue_concentration",
)


def naive_utc(moment: datetime) -> datetime:
    """`moment` as a naive UTC datetime (naive input is taken to be UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def utc_now() -> datetime:
    """Now, as a naive UTC datetime (how every timestamp is stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def from_epoch(seconds: int | float) -> datetime:
    """A Unix timestamp as a naive UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class RunWindow:
    """Which run, for which data interval [interval_start, interval_end) in naive UTC."""

    run_id: str
    interval_start: datetime
    interval_end: datetime


@dataclass(frozen=True)
class ExtractWindow:
    """What one extraction reads: from `since` (None: all history) to the run's interval end."""

    run: RunWindow
    since: datetime | None

    @property
    def until(self) -> datetime:
        return self.run.interval_end


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
    # Columns holding a person's name: no published value may equal one of them.
    person_name_columns: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        return f"{RAW_SCHEMA}.{self.name}"

    @property
    def all_columns(self) -> dict[str, str]:
        return {**self.columns, **META_COLUMNS}

    def column_ddl(self) -> str:
        return ", ".join(f"{name} {sql}" for name, sql in self.all_columns.items())

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        types = {
            "TEXT": pa.string(),
            "BIGINT": pa.int64(),
            "INTEGER": pa.int32(),
            "BOOLEAN": pa.bool_(),
            "DOUBLE PRECISION": pa.float64(),
            "TIMESTAMP": pa.timestamp("us"),
            "DATE": pa.date32(),
        }
        return pa.schema([(name, types[sql]) for name, sql in self.all_columns.items()])


# Every bad record, one row per distinct content (first location kept).
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
        # JSON list of "file: why" for the bad files that fail the night (surveys).
        "blocking_files": "TEXT",
    },
    key=(),
)


@dataclass(frozen=True)
class BadRecord:
    """One input record (or whole file) that breaks the contract, kept with the reason."""

    object_kind: str
    location: str  # file:line, object id, or the file itself
    raw_text: str
    reason: str
    # A whole file the source contract says must stop the night (a survey export with a
    # renamed column or not in UTF-8); the rest of the source still loads.
    fails_night: bool = False


@dataclass
class Batch:
    """What one extractor produced for one raw table.

    Either `rows` (Arrow), or a bulk source parsed inside a DuckDB connection, so
    it never leaves DuckDB (on another warehouse the result is staged as Arrow):
    `parse_ahead` parses it into `parsed`, a raw-schema table (a DuckDB warehouse
    runs it before the load's transaction opens, another warehouse in its scratch
    DuckDB), then `fill`, in the same connection, leaves there exactly the rows to
    load, in the raw table's columns, as temp view `staged`, and returns the bad
    records. A first load renames `parsed` into place (`Transaction.adopt_staged`).
    """

    table: RawTable
    rows: pa.Table | None = None
    fill: Callable[[Any, str], list[BadRecord]] | None = None
    parse_ahead: Callable[[Any], None] | None = None
    parsed: str | None = None


class BatchInputUnreadable(Exception):
    """Part of a batch's input cannot be read at all (a corrupt file): the loader rolls
    back and loads again with `batch` (the readable rest), keeping `bad` in quarantine."""

    def __init__(self, batch: Batch, bad: list[BadRecord]) -> None:
        super().__init__(f"{len(bad)} unreadable input(s) of {batch.table.name} set aside")
        self.batch = batch
        self.bad = bad


@dataclass
class Extracted:
    """Everything one source extraction produced: batches and bad records."""

    batches: list[Batch]
    bad: list[BadRecord] = field(default_factory=list)


def with_meta(
    table: RawTable, columns: dict[str, list | Any], source: str, run: RunWindow
) -> pa.Table:
    """The Arrow batch for `table` from column lists, with the meta columns added."""
    import pyarrow as pa

    length = len(next(iter(columns.values()))) if columns else 0
    full = {
        **columns,
        "_source": [source] * length,
        "_run_id": [run.run_id] * length,
        "_loaded_at": [utc_now()] * length,
    }
    schema = table.arrow_schema()
    return pa.table({name: full[name] for name in schema.names}, schema=schema)


def rows_to_columns(table: RawTable, rows: list[dict]) -> dict[str, list]:
    """Column lists of `table`'s declared columns from row dicts."""
    return {name: [row[name] for row in rows] for name in table.columns}
