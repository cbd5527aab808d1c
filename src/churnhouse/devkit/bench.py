"""`make bench`: simulate a bigger company, ingest it, build the marts, print the numbers.

Ratios are against baselines measured in the same process on the same files,
so they hold across machines: the events load is compared with DuckDB reading
the same partitions straight into a table (the practical limit here). The dbt
build is timed in full and again without --full-refresh (the nightly path, same
inputs), and the marts are checked against the simulator's truth.

Defaults are the issue's scale (10,000 customers x 24 months, about 2.5 minutes
on 2 cores; the simulator uses every core unless `--workers` says otherwise);
`--customers 2000 --months 12` gives a quick look.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from churnhouse.config import churn_home


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline_events_rows_per_second(events_root: Path) -> tuple[int, float]:
    from churnhouse.warehouse.duckdb import open_duckdb

    files = sorted(str(p) for p in events_root.glob("dt=*/*.jsonl.gz"))
    con = open_duckdb(events_root.parent / "baseline.duckdb")  # the warehouse's memory limit
    started = time.monotonic()
    con.execute(
        "CREATE OR REPLACE TABLE events AS SELECT * FROM "
        "read_json(?, format = 'newline_delimited', "
        "ignore_errors = true)",
        [files],
    )
    seconds = time.monotonic() - started
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    return rows, rows / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--warehouse", default=None, help="PostgreSQL URL (default: a DuckDB file)")
    parser.add_argument(
        "--workers", type=int, default=None, help="simulator processes (default: all cores)"
    )
    args = parser.parse_args(argv)

    from churnhouse.config import sources_for_bundle
    from churnhouse.contracts import RunWindow
    from churnhouse.devkit.simulator import bundle_as_of, simulate
    from churnhouse.ingest import ingest
    from churnhouse.sources import source_names
    from churnhouse.warehouse import open_warehouse

    work = churn_home() / "bench"
    shutil.rmtree(work, ignore_errors=True)
    bundle = work / "bundle"
    started = time.monotonic()
    summary = simulate(
        out=bundle,
        customers=args.customers,
        months=args.months,
        start="2024-01",
        seed=args.seed,
        workers=args.workers,
    )
    print(summary.describe())
    print(f"simulate: {time.monotonic() - started:.1f}s, peak RSS {_peak_rss_mib():.0f} MiB")

    warehouse = open_warehouse(args.warehouse or str(work / "warehouse.duckdb"))
    end = bundle_as_of(bundle)
    run = RunWindow("bench", end - timedelta(days=1), end)
    sources = sources_for_bundle(bundle)
    rates = {}
    for source in source_names():
        ingest_started = time.monotonic()
        result = ingest(source, run, sources, warehouse)
        result.seconds = time.monotonic() - ingest_started  # extraction included
        rates[source] = result.rows_loaded / max(result.seconds, 1e-9)
        print(
            f"ingest {source:<8} {result.rows_loaded:>10,} rows in {result.seconds:6.1f}s "
            f"= {rates[source]:>10,.0f} rows/s"
        )

    baseline_rows, baseline_rate = _baseline_events_rows_per_second(bundle / "events")
    print(
        f"baseline DuckDB read_json → table: {baseline_rows:,} rows at {baseline_rate:,.0f} rows/s"
    )
    print(f"events load / baseline = {rates['events'] / baseline_rate:.2f} (target ≥ 0.70)")
    equal = _bench_dbt(warehouse, bundle, end)
    print(f"peak RSS {_peak_rss_mib():.0f} MiB")
    return 0 if equal else 1


def _bench_dbt(warehouse, bundle: Path, as_of: datetime) -> bool:
    """Full build, then the incremental rebuild on the same inputs; the marts against the truth."""
    from churnhouse.devkit.acceptance import compare_with_truth
    from churnhouse.transform import build

    full = build(warehouse.url, as_of, marts_schema="analytics", full_refresh=True)
    print(f"dbt full build: {full.seconds:.1f}s")
    comparisons = compare_with_truth(warehouse, bundle)
    for comparison in comparisons:
        print(f"truth check: {comparison.describe()}")
    incremental = build(warehouse.url, as_of, marts_schema="analytics")
    print(
        f"dbt incremental rebuild (the nightly path): {incremental.seconds:.1f}s "
        f"= {incremental.seconds / full.seconds:.2f} of the full build"
    )
    return all(comparison.equal for comparison in comparisons)


if __name__ == "__main__":
    sys.exit(main())
