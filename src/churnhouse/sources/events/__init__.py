"""Product analytics events: `dt=YYYY-MM-DD/part-NNNN.jsonl.gz` partitions by received day.

Segment-spec calls of every type (track, identify, group, page, screen, alias, and types
the contract does not list, kept as they are) in the wire key style (camelCase, as the
tracking libraries send it) or the warehouse style (snake_case), also mixed in one file;
both become the same raw columns.

Parsed by DuckDB's native readers (never line by line in Python): each line is
read as text, validated and shredded in SQL, then handed on as Arrow.
Duplicates by `message_id` collapse to the first delivery; timestamps are UTC.
"""

from churnhouse.sources.events.extract import (
    EVENTS,
    extract,
    partitions_between,
    read_events,
    read_partitions,
)

RAW_TABLES = (EVENTS,)
LOOKBACK_DAYS = 7  # late events land in earlier partitions' days

__all__ = [
    "EVENTS",
    "LOOKBACK_DAYS",
    "RAW_TABLES",
    "extract",
    "partitions_between",
    "read_events",
    "read_partitions",
]
