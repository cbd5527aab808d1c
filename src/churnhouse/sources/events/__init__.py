"""Product analytics events: `dt=YYYY-MM-DD/part-NNNN.jsonl.gz` partitions by received day.

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
