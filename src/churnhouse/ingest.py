"""One call per source: extract its data for a run's interval and load it into the raw layer.

The DAG's extract tasks and `churnhouse run` both call `ingest(source, run)`.
The first run on an empty warehouse takes the whole history available up to
the end of its interval; later runs take from the previous successful
interval's end (or their own start, whichever is earlier) minus a look-back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from churnhouse.config import Sources, sources_from_settings
from churnhouse.load import (
    Batch,
    LoadResult,
    RunInfo,
    last_successful_load,
    load_source,
    record_failed_load,
)
from churnhouse.warehouse import Warehouse, open_warehouse

log = logging.getLogger("churnhouse.ingest")

SOURCES = ("crm", "billing", "events", "surveys")


def lookback(source: str) -> timedelta:
    """Look-back window per source; `CHURN_<SOURCE>_LOOKBACK_DAYS` overrides it."""
    defaults = {"crm": 1, "billing": 3, "events": 7, "surveys": 0}
    days = os.environ.get(f"CHURN_{source.upper()}_LOOKBACK_DAYS", defaults[source])
    return timedelta(days=int(days))


def window_start(warehouse: Warehouse, source: str, run: RunInfo) -> datetime | None:
    """Where this run starts reading: None (all history) on an empty warehouse."""
    previous_end = last_successful_load(warehouse, source)
    if previous_end is None:
        return None
    return min(previous_end, run.interval_start) - lookback(source)


def _extract_crm(sources: Sources, since: datetime | None, run: RunInfo):
    from churnhouse.sources import crm

    return crm.extract(sources.crm_url, since, run), []


def _extract_billing(sources: Sources, since: datetime | None, run: RunInfo):
    from churnhouse.sources import billing

    return billing.extract(sources, since, run)


def _extract_events(sources: Sources, since: datetime | None, run: RunInfo):
    from churnhouse.sources import events

    batch = events.extract(
        sources.events_uri, since.date() if since else None, _end_day(run.interval_end), run
    )
    return [batch], []


def _end_day(interval_end: datetime):
    """Partitions strictly before the interval end (a partial day at the end is included)."""
    day = interval_end.date()
    return (
        day if interval_end == datetime(day.year, day.month, day.day) else day + timedelta(days=1)
    )


def _extract_surveys(sources: Sources, since: datetime | None, run: RunInfo):
    from churnhouse.sources import surveys

    return surveys.extract(sources.surveys_uri, run)


_EXTRACTORS: dict[
    str, Callable[[Sources, datetime | None, RunInfo], tuple[list[Batch], list[dict]]]
] = {
    "crm": _extract_crm,
    "billing": _extract_billing,
    "events": _extract_events,
    "surveys": _extract_surveys,
}


def ingest(
    source: str,
    run: RunInfo,
    sources: Sources | None = None,
    warehouse: Warehouse | None = None,
) -> LoadResult:
    """Extract `source` for `run` and load it into the raw layer in one transaction."""
    if source not in _EXTRACTORS:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    sources = sources or sources_from_settings()
    warehouse = warehouse or open_warehouse()
    since = window_start(warehouse, source, run)
    log.info(
        "%s: reading %s to %s",
        source,
        since.isoformat() if since else "all history",
        run.interval_end,
    )
    started = time.monotonic()
    try:
        batches, bad = _EXTRACTORS[source](sources, since, run)
        result = load_source(warehouse, source, run, batches, bad)
    except Exception as error:
        record_failed_load(warehouse, run, source, time.monotonic() - started, error)
        raise
    print(result.describe(), flush=True)
    return result


def ingest_bundle_once(
    sources: Sources, warehouse: Warehouse, as_of: datetime
) -> dict[str, LoadResult]:
    """All four sources for the day ending at `as_of`, outside Airflow (the acceptance tests).

    On an empty warehouse this takes the whole history up to `as_of`.
    """
    run = RunInfo(f"direct__{as_of:%Y-%m-%d}", as_of - timedelta(days=1), as_of)
    return {source: ingest(source, run, sources, warehouse) for source in SOURCES}
