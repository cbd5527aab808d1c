"""One call per source: extract its data for a run's interval and load it into the raw layer.

The DAG's extract tasks and `churnhouse run` both call `ingest(source, run)`.
The first run on an empty warehouse takes the whole history available up to
the end of its interval; later runs take from the previous successful
interval's end (or their own start, whichever is earlier) minus the source's
look-back.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from churnhouse.config import SourceSettings, sources_from_settings
from churnhouse.contracts import ExtractWindow, RunWindow
from churnhouse.load import LoadResult, last_successful_load, load_source, record_failed_load
from churnhouse.sources import lookback, source, source_names
from churnhouse.warehouse import Warehouse, open_warehouse

log = logging.getLogger("churnhouse.ingest")


def extract_window(warehouse: Warehouse, name: str, run: RunWindow) -> ExtractWindow:
    """What this run reads of source `name`: all history on an empty warehouse."""
    previous_end = last_successful_load(warehouse, name)
    if previous_end is None:
        return ExtractWindow(run, None)
    return ExtractWindow(run, min(previous_end, run.interval_start) - lookback(name))


def ingest(
    name: str,
    run: RunWindow,
    settings: SourceSettings | None = None,
    warehouse: Warehouse | None = None,
) -> LoadResult:
    """Extract source `name` for `run` and load it into the raw layer in one transaction."""
    extractor = source(name)
    settings = settings or sources_from_settings()
    warehouse = warehouse or open_warehouse()
    window = extract_window(warehouse, name, run)
    since = window.since.isoformat() if window.since else "all history"
    log.info("%s: reading %s to %s", name, since, window.until)
    started = time.monotonic()
    try:
        result = load_source(warehouse, name, run, extractor.extract(window, settings))
    except Exception as error:
        record_failed_load(warehouse, run, name, time.monotonic() - started, error)
        raise
    print(result.describe(), flush=True)
    return result


def ingest_bundle_once(
    settings: SourceSettings, warehouse: Warehouse, as_of: datetime
) -> dict[str, LoadResult]:
    """Every source for the day ending at `as_of`, outside Airflow (the acceptance tests).

    On an empty warehouse this takes the whole history up to `as_of`.
    """
    run = RunWindow(f"direct__{as_of:%Y-%m-%d}", as_of - timedelta(days=1), as_of)
    return {name: ingest(name, run, settings, warehouse) for name in source_names()}
