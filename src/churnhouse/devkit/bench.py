"""`make bench`: simulate a bigger company, run it the way nights run it, print the ratios.

Ratios are against baselines measured on the same machine and files, so they hold
across machines (this one is shared and noisy):

- the events load against DuckDB reading the same partitions straight into a
  table (the practical limit here);
- the nightly path (extract the new day, raw gate, dbt, marts gate, publish) on
  a warehouse that holds the history, against the same steps from empty;
- that night at 24 months of history against the same night at 12 months (a
  second, 12-month company);
- the billing export read in bulk (DuckDB, as nights read it) against the same
  export read object by object in Python (the reader the API uses), with the
  full build's billing rows per second;
- PostgreSQL against DuckDB for the ingest and the full dbt build (same files);
- the peak resident memory: this thin process plus the largest of its parts, each
  run in a fresh process (the simulation, the baseline, every step of every night
  as the DAG's tasks run them, the truth check, the PostgreSQL load).

The marts published by the night are checked against the simulator's truth.
The last lines are the ones a script reads, one per ratio. Defaults are the
issue's scale (10,000 customers x 24 months); `--customers 100000` is the big run,
`--customers 2000` a quick look.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from churnhouse.config import churn_home

BIG_RUN_CUSTOMERS = 20_000
# A big run's DuckDB share: the 2 GiB target is the default scale's; 100,000 x 24 months
# (124M events, 5.7 GB of gzip) is held to what this 24 GiB machine can give.
BIG_RUN_MEMORY = {"CHURN_DUCKDB_MEMORY_LIMIT": "8GB", "CHURN_DBT_DUCKDB_MEMORY_LIMIT": "8GB"}
NIGHT_ROUNDS = 2
NIGHT_STEPS = ("extract", "raw gate", "dbt", "marts gate", "publish")


@dataclass
class NightTimes:
    """Seconds per step of one run of the nightly path, and the rows each source loaded."""

    label: str
    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    source_seconds: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)

    def by_source(self) -> str:
        return ", ".join(
            f"{source} {rows:,} rows in {self.source_seconds[source]:.1f}s "
            f"({rows / max(self.source_seconds[source], 1e-9):,.0f}/s)"
            for source, rows in self.rows.items()
        )

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def describe(self) -> str:
        steps = ", ".join(f"{step} {self.seconds[step]:.1f}s" for step in NIGHT_STEPS)
        peaks = ", ".join(f"{step} {self.peak_mib[step]:.0f}" for step in NIGHT_STEPS)
        return f"{self.label}: {steps} = {self.total:.1f}s (peak RSS MiB after {peaks})"


def peak_rss_mib() -> float:
    """The largest resident set of this process or of any child it waited for (MiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def run_night(warehouse, sources, run, *, label: str, full_refresh: bool = False) -> NightTimes:
    """The nightly DAG's steps in order, in this process, timed (no Airflow around them)."""
    times = NightTimes(label)
    for step in NIGHT_STEPS:
        started = time.monotonic()
        rows, source_seconds = run_step(step, warehouse, sources, run, full_refresh)
        times.seconds[step] = time.monotonic() - started
        times.rows.update(rows)
        times.source_seconds.update(source_seconds)
        times.peak_mib[step] = peak_rss_mib()
        if step == "extract":
            print(f"{label}: extract by source: {times.by_source()}", flush=True)
    print(times.describe(), flush=True)
    return times


def run_step(step: str, warehouse, sources, run, full_refresh: bool) -> tuple[dict, dict]:
    """One step of the nightly path; the extract returns rows and seconds by source."""
    from churnhouse.gates import run_marts_gate, run_raw_gate
    from churnhouse.ingest import ingest
    from churnhouse.publish import publish
    from churnhouse.sources import source_names
    from churnhouse.transform import build

    rows, source_seconds = {}, {}
    if step == "extract":
        for source in source_names():
            started = time.monotonic()
            rows[source] = ingest(source, run, sources, warehouse).rows_loaded
            source_seconds[source] = time.monotonic() - started
    elif step == "raw gate":
        run_raw_gate(warehouse, source_names(), run)
    elif step == "dbt":
        build(warehouse.url, run.interval_end, full_refresh=full_refresh)
    elif step == "marts gate":
        run_marts_gate(warehouse, run)
    else:
        publish(warehouse, run.run_id, run.interval_end)
    return rows, source_seconds


def _import_libraries() -> None:
    """Great Expectations and dbt imported before the clock starts: each part runs in a
    fresh process, and their import (seconds on a busy machine) is Python start-up, paid
    once by every Airflow task process whatever the data, not the night's work."""
    import dbt.cli.main  # noqa: F401
    import great_expectations  # noqa: F401

    import churnhouse.gates  # noqa: F401
    import churnhouse.transform  # noqa: F401


def night_in_step_processes(
    peaks: Peaks, part: str, bundle: Path, folder: Path, run, *, full_refresh: bool = False
) -> NightTimes:
    """The nightly path with each step in its own process, as the DAG runs it (one task
    process per step), on the warehouse in `folder`; `part` names them in the peaks."""
    times = NightTimes(part)
    for step in NIGHT_STEPS:
        seconds, rows, source_seconds = peaks.run(
            part, one_step, step, bundle, folder, run, full_refresh, announce=False
        )
        times.seconds[step] = seconds
        times.rows.update(rows)
        times.source_seconds.update(source_seconds)
        times.peak_mib[step] = peaks.parts[part]
        if step == "extract":
            print(f"{part}: extract by source: {times.by_source()}", flush=True)
    print(times.describe(), flush=True)
    return times


def one_step(step: str, bundle: Path, folder: Path, run, full_refresh: bool):
    """One step of the nightly path in this (fresh) process, timed: (seconds, rows by
    source, seconds by source)."""
    from churnhouse.config import sources_for_bundle
    from churnhouse.warehouse import open_warehouse

    _import_libraries()
    warehouse = open_warehouse(str(folder / "warehouse.duckdb"))
    sources = sources_for_bundle(bundle)
    started = time.monotonic()
    rows, source_seconds = run_step(step, warehouse, sources, run, full_refresh)
    return time.monotonic() - started, rows, source_seconds


def full_build_window(bundle: Path, run_id: str):
    """The full build's run: from empty up to the day before the bundle's last."""
    from churnhouse.contracts import RunWindow
    from churnhouse.devkit.simulator import bundle_as_of

    end = bundle_as_of(bundle)
    day = timedelta(days=1)
    return RunWindow(run_id, end - 2 * day, end - day)


def full_build_in_steps(peaks: Peaks, part: str, bundle: Path, folder: Path) -> NightTimes:
    """From empty up to the day before the bundle's last (a full build), then a copy of
    the warehouse folder as it stands, so each measured night starts from the same state."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    before = full_build_window(bundle, "bench-full")
    full = night_in_step_processes(peaks, part, bundle, folder, before, full_refresh=True)
    _replace_folder(folder, _after_full(folder))
    return full


def night_in_steps(peaks: Peaks, part: str, bundle: Path, folder: Path) -> NightTimes:
    """The bundle's last day as an ordinary night, on the warehouse as the full build left
    it (restored first: every measured night does the same work)."""
    from churnhouse.contracts import RunWindow
    from churnhouse.devkit.simulator import bundle_as_of

    _replace_folder(_after_full(folder), folder)
    end = bundle_as_of(bundle)
    tonight = RunWindow("bench-night", end - timedelta(days=1), end)
    return night_in_step_processes(peaks, part, bundle, folder, tonight)


def published_equals_truth(bundle: Path, folder: Path) -> bool:
    from churnhouse.warehouse import open_warehouse

    return truth_matches(open_warehouse(str(folder / "warehouse.duckdb")), bundle)


def _after_full(folder: Path) -> Path:
    return folder.with_name(folder.name + "-after-full")


def _replace_folder(source: Path, target: Path) -> None:
    """`target` becomes a copy of `source`, written through to disk before it returns:
    otherwise the night measured next pays for the copy (DuckDB's first commit syncs the
    file, and with it the 1.3 GB just copied; a real night's file was written long ago)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    os.sync()


def baseline_events_rows_per_second(events_root: Path, scratch: Path) -> float:
    """DuckDB's own reader: every events partition straight into a table."""
    from churnhouse.warehouse.duckdb import open_duckdb

    files = sorted(str(p) for p in events_root.glob("dt=*/*.jsonl.gz"))
    con = open_duckdb(scratch)  # the warehouse's memory limit
    started = time.monotonic()
    con.execute(
        "CREATE OR REPLACE TABLE events AS SELECT * FROM "
        "read_json(?, format = 'newline_delimited', ignore_errors = true)",
        [files],
    )
    seconds = time.monotonic() - started
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    scratch.unlink(missing_ok=True)
    print(f"baseline DuckDB read_json → table: {rows:,} rows in {seconds:.1f}s")
    return rows / seconds


def events_load_seconds(bundle: Path, folder: Path) -> tuple[int, float]:
    """The full build's events load alone (rows, seconds): from empty up to the day
    before the bundle's last, into a fresh warehouse in `folder`, as `make bench` times it."""
    from churnhouse.config import sources_for_bundle
    from churnhouse.ingest import ingest
    from churnhouse.warehouse import open_warehouse

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    before = full_build_window(bundle, "bench-events")
    warehouse = open_warehouse(str(folder / "warehouse.duckdb"))
    started = time.monotonic()
    rows = ingest("events", before, sources_for_bundle(bundle), warehouse).rows_loaded
    seconds = time.monotonic() - started
    shutil.rmtree(folder, ignore_errors=True)
    return rows, seconds


def billing_read_seconds(bundle: Path) -> dict[str, float]:
    """Seconds to read the whole billing export in bulk (as nights do) and object by
    object in Python (the reader the API still uses), on the same files."""
    from churnhouse.config import sources_for_bundle
    from churnhouse.contracts import ExtractWindow, RunWindow
    from churnhouse.devkit.simulator import bundle_as_of
    from churnhouse.sources.billing.extract import extract_export_in_bulk, extract_objects

    end = bundle_as_of(bundle)
    window = ExtractWindow(RunWindow("billing-read", end - timedelta(days=1), end), None)
    settings = sources_for_bundle(bundle)
    seconds = {}
    for name, reader in (("bulk", extract_export_in_bulk), ("objects", extract_objects)):
        started = time.monotonic()
        extracted = reader(window, settings)
        seconds[name] = time.monotonic() - started
        rows = sum(batch.rows.num_rows for batch in extracted.batches)
        print(f"billing read {name}: {rows:,} rows in {seconds[name]:.1f}s")
        del extracted
    return seconds


def simulate_company(folder: Path, customers: int, months: int, seed: int, workers: int | None):
    from churnhouse.devkit.simulator import simulate

    started = time.monotonic()
    summary = simulate(
        out=folder,
        customers=customers,
        months=months,
        start="2024-01",
        seed=seed,
        workers=workers,
    )
    print(summary.describe())
    print(f"simulate: {time.monotonic() - started:.1f}s, peak RSS {peak_rss_mib():.0f} MiB")
    return folder


def truth_matches(warehouse, bundle: Path) -> bool:
    """The published marts against the simulator's truth, one line per mart."""
    from churnhouse.devkit.acceptance import compare_published_with_truth

    comparisons = compare_published_with_truth(warehouse, bundle)
    for comparison in comparisons:
        print(f"truth check: {comparison.describe()}")
    return all(comparison.equal for comparison in comparisons)


def postgres_ratios(bundle: Path, full_extract: float, full_dbt: float) -> list[str]:
    """The same company into PostgreSQL (ingest, full dbt build) against DuckDB's full build:
    `postgres / duckdb ...` lines, or one line saying why they are missing. The parts before
    leave gigabytes of DuckDB copies to write back: that is synced first, as before a night,
    so PostgreSQL does not pay for it."""
    from churnhouse.devkit.bench_postgres import bench_postgres
    from churnhouse.devkit.simulator import bundle_as_of

    os.sync()

    result = bench_postgres(bundle, bundle_as_of(bundle))
    return result.lines(full_extract, full_dbt)


def in_fresh_process(function, *args):
    """`function(*args)` in a new Python process, and that process's peak RSS (MiB).

    Each part of the bench starts from a clean heap: what one part's libraries keep
    (DuckDB's buffers, dbt's parsed project) is not carried into the next.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_with_peak, function, *args).result()


class PartFailed(RuntimeError):
    """A part of the bench failed in its process; the message carries its traceback."""


def _with_peak(function, *args):
    try:
        result = function(*args)
    except Exception:
        # Some libraries' exceptions (dbt's) cannot be rebuilt from a pickle.
        import traceback

        raise PartFailed(f"{function.__name__} failed:\n{traceback.format_exc()}") from None
    return result, peak_rss_mib()


class Peaks:
    """The bench's peak memory: this (thin) process plus the largest of its parts, each
    measured in its own process while this one waits."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    def run(self, label: str, function, *args, announce: bool = True):
        """`function(*args)` in a fresh process; a label's peak is the largest of its runs."""
        result, peak = in_fresh_process(function, *args)
        self.parts[label] = max(peak, self.parts.get(label, 0.0))
        if announce:
            print(f"{label}: peak RSS {peak:.0f} MiB", flush=True)
        return result

    @property
    def whole(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return own + max(self.parts.values(), default=0.0)

    def line(self) -> str:
        parts = ", ".join(f"{label} {peak:.0f}" for label, peak in self.parts.items())
        return f"peak RSS {self.whole:.0f} MiB (target ≤ 2048; parts: {parts})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=None, help="simulator processes (all)")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL comparison")
    parser.add_argument("--bundle", default=None, help="an existing simulated bundle to use")
    parser.add_argument(
        "--no-history-comparison",
        action="store_true",
        help="skip the second company at half the history (the big run does)",
    )
    parser.add_argument(
        "--events-only",
        action="store_true",
        help="only the events load against the baseline (minutes, not half an hour)",
    )
    args = parser.parse_args(argv)
    big = args.customers > BIG_RUN_CUSTOMERS
    if big and args.events_only:
        parser.error("--events-only compares with the baseline, which a big run skips")
    if big:
        args.no_history_comparison = args.no_postgres = True
        for name, value in BIG_RUN_MEMORY.items():
            os.environ.setdefault(name, value)
        print(
            f"a big run (over {BIG_RUN_CUSTOMERS:,} customers): its time and memory only; "
            "the baseline, history and PostgreSQL ratios are measured at the default scale; "
            + ", ".join(f"{name}={os.environ[name]}" for name in BIG_RUN_MEMORY)
        )
    bench_started = time.monotonic()
    work = churn_home() / "bench"
    peaks = Peaks()
    if args.bundle:
        bundle = Path(args.bundle)
        print(f"bench on the bundle {bundle} (not simulated again)")
        work.mkdir(parents=True, exist_ok=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
        bundle = peaks.run(
            "simulate",
            simulate_company,
            work / "bundle",
            args.customers,
            args.months,
            args.seed,
            args.workers,
        )
    if not big:
        baseline_rate = peaks.run(
            "baseline",
            baseline_events_rows_per_second,
            bundle / "events",
            work / "baseline.duckdb",
        )
    if args.events_only:
        return _events_only(peaks, bundle, work, baseline_rate)
    companies = {args.months: (bundle, work / "duckdb")}
    full = full_build_in_steps(peaks, "company: full build", bundle, work / "duckdb")
    if not args.no_history_comparison:
        months = args.months // 2
        half = peaks.run(
            "half history: simulate",
            simulate_company,
            work / f"bundle-{months}",
            args.customers,
            months,
            args.seed,
            args.workers,
        )
        companies[months] = (half, work / f"duckdb-{months}")
        full_build_in_steps(peaks, "half history: full build", *companies[months])
    # The nights of both companies take turns, each from the state its full build left:
    # whatever else this shared machine runs disturbs both alike; the quicker of each is kept.
    nights: dict[int, list[NightTimes]] = {months: [] for months in companies}
    for round_ in range(1 if big else NIGHT_ROUNDS):
        for history, (company, folder) in companies.items():
            label = f"night {round_ + 1} at {history} months"
            nights[history].append(night_in_steps(peaks, label, company, folder))
    night = min(nights[args.months], key=lambda times: times.total)
    equal = peaks.run("truth check", published_equals_truth, bundle, work / "duckdb")
    events_rate = full.rows["events"] / full.source_seconds["events"]
    billing_rate = full.rows["billing"] / full.source_seconds["billing"]
    lines = [
        f"events load {events_rate:,.0f} rows/s"
        if big
        else f"events load / baseline = {events_rate / baseline_rate:.2f} (target ≥ 0.70)",
        f"nightly / full = {night.total / full.total:.2f} (target ≤ 0.25)",
    ]
    if not big:
        billing = peaks.run("billing read", billing_read_seconds, bundle)
        lines.append(
            f"billing load {billing_rate:,.0f} rows/s; "
            f"bulk read / object-by-object read = {billing['bulk'] / billing['objects']:.2f}"
        )
    else:
        lines.append(f"billing load {billing_rate:,.0f} rows/s")
    if not args.no_history_comparison:
        half_night = min(nights[months], key=lambda times: times.total)
        lines.append(
            f"nightly at {args.months} / at {months} months of history = "
            f"{night.total / half_night.total:.2f} (target ≤ 1.5)"
        )
    if not args.no_postgres:
        lines += peaks.run(
            "postgres", postgres_ratios, bundle, full.seconds["extract"], full.seconds["dbt"]
        )
    lines.append(peaks.line())
    print(f"bench: {time.monotonic() - bench_started:.0f}s in all")
    print("\n".join(lines))
    return 0 if equal else 1


def _events_only(peaks: Peaks, bundle: Path, work: Path, baseline_rate: float) -> int:
    rows, seconds = peaks.run("events load", events_load_seconds, bundle, work / "events-only")
    print(f"events load: {rows:,} rows in {seconds:.1f}s")
    print(f"events load / baseline = {rows / seconds / baseline_rate:.2f} (target ≥ 0.70)")
    print(peaks.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
