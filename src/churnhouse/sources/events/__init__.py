"""Product analytics events: `dt=YYYY-MM-DD/part-NNNN.jsonl.gz` partitions by received day.

Parsed by DuckDB's native readers (never line by line in Python): each line is
read as text, validated and shredded in SQL, then handed on as Arrow.
Duplicates by `message_id` collapse to the first delivery; timestamps are UTC.
"""

from churnhouse.sources.events.extract import EVENTS, extract, partitions_between, read_events

__all__ = ["EVENTS", "extract", "partitions_between", "read_events"]
