"""The simulated company behind `make demo`, the tests and the benchmarks.

`simulate(out, customers, months, start, seed)` writes a complete source bundle
exactly as `docs/sources.md` describes (CRM database, billing export,
event partitions, survey CSVs, FX rates) plus `truth/`: the metrics of
`docs/metrics.md` computed from the clean records the generator made,
and the count of every kind of bad input it injected. Same seed, same bytes.

as_of is the first instant of the month after the last simulated month;
nothing is created, submitted or received after it.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from churnhouse.devkit.simulator.billing import BILLING_FILES, price_catalog_lines
from churnhouse.devkit.simulator.chunk import ChunkResult, Settings, build_chunk
from churnhouse.devkit.simulator.clock import iso
from churnhouse.devkit.simulator.crm import CrmWriter
from churnhouse.devkit.simulator.events import STYLES as EVENT_STYLES
from churnhouse.devkit.simulator.fx import fx_rates, write_fx_rates
from churnhouse.devkit.simulator.staff import staff_rows
from churnhouse.devkit.simulator.truth import (
    CHURN_COLUMNS,
    IDENTITY_COLUMNS,
    MONTHLY_COLUMNS,
    SAVE_COLUMNS,
    MonthlyTruth,
)
from churnhouse.devkit.simulator.truth_health import (
    CHURN_MRR_COLUMNS,
    CUSTOMER_MONTH_COLUMNS,
    CUSTOMER_NPS_COLUMNS,
    HEALTH_SIGNAL_COLUMNS,
)
from churnhouse.devkit.simulator.truth_marts import COMPANY_TABLES, NPS_COLUMNS, NpsTruth
from churnhouse.devkit.stripe_shapes import CURRENT_API_VERSION

__all__ = ["Summary", "simulate"]

CHUNK_SIZE = 500
BAD_INPUT_KEYS = (
    "events_invalid_json",
    "events_missing_key",
    "events_bad_timestamp",
    "survey_bad_date",
    "nps_score_out_of_range",
    "nps_bad_date",
    "events_unknown_type",
    "events_activity_without_workspace",
    "duplicate_event_deliveries",
    "late_events",
    "billing_customers_missing_crm_id",
    "free_mail_customers",
    "redelivered_survey_rows",
    "unmatched_billing_customers",
    "messy_emails",
)
QUARANTINED_KEYS = BAD_INPUT_KEYS[:6]  # the kinds the pipeline must quarantine


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    as_of: str = ""
    shapes: str = ""  # the Stripe API version(s) and the event key style written

    def describe(self) -> str:
        c = self.counts
        bad = sum(c[key] for key in QUARANTINED_KEYS)
        return "\n".join(
            [
                f"simulated company as of {self.as_of}: {c['companies']:,} customer companies",
                f"  billing: {c['billing_customers']:,} customers, "
                f"{c['billing_subscriptions']:,} subscriptions, {c['billing_invoices']:,} "
                f"invoices, {c['billing_charges']:,} charges",
                *([f"  shapes: {self.shapes}"] if self.shapes else []),
                f"  CRM: {c['crm_accounts']:,} accounts, {c['crm_contacts']:,} contacts, "
                f"{c['crm_activities']:,} activities",
                f"  events: {c['event_lines']:,} lines in {c['event_files']:,} files",
                f"  surveys: {c['survey_cancellation_rows']:,} cancellation rows, "
                f"{c['survey_nps_rows']:,} NPS rows",
                f"  truth: {c['churns']:,} churns, {c['saves']:,} saves, "
                f"{c['truth_monthly_rows']:,} monthly rows",
                f"  bad input to quarantine: {bad:,}; duplicate deliveries "
                f"{c['duplicate_event_deliveries']:,}, late events {c['late_events']:,}",
                f"  {self.seconds:.1f}s",
            ]
        )


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def simulate(
    out: Path,
    customers: int,
    months: int,
    start: str,
    seed: int,
    crm_url: str | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    workers: int | None = None,
    stripe_api_version: str = CURRENT_API_VERSION,
    stripe_upgrade_at: str | None = None,
    events_style: str = "wire",
) -> Summary:
    """Write the bundle of a company of `customers` over `months` from `start` (YYYY-MM).

    Billing objects are in the shape of `stripe_api_version` (docs/sources.md section 2);
    with `stripe_upgrade_at` (YYYY-MM-DD, UTC) the account moved to that new-shape version
    that day: invoices created before it are in the old shape, the rest and every
    subscription (re-read in full) in the new one. `events_style`: the Segment key style
    of the event files, `wire` (camelCase, as the tracking libraries send it) or
    `warehouse` (snake_case); the calls are the same.
    """
    started = time.monotonic()
    out = Path(out)
    if events_style not in EVENT_STYLES:
        raise ValueError(f"events_style must be one of {', '.join(EVENT_STYLES)}: {events_style!r}")
    settings = Settings(
        out.resolve(),
        customers,
        months,
        start,
        seed,
        chunk_size,
        stripe_api_version,
        _day_start(stripe_upgrade_at),
        events_style,
    )
    _ = settings.stripe_shape  # a wrong version or upgrade fails before anything is written
    calendar = settings.calendar
    _clear(out)
    _progress(
        f"simulate: {customers:,} customers, {months} months from {start}, seed {seed}, "
        f"as_of {iso(calendar.as_of)}, {settings.chunks} chunk(s) of {chunk_size} → {out}"
    )
    counts: Counter = Counter()
    counts["fx_rates"] = write_fx_rates(out / "fx_rates.csv", fx_rates(seed, calendar))
    prices = price_catalog_lines()
    (out / "billing" / "prices.jsonl").write_text("\n".join(prices) + "\n", encoding="utf-8")
    counts["billing_prices"] = len(prices)
    crm = CrmWriter(crm_url or f"sqlite:///{(out / 'crm.sqlite').resolve()}")
    crm.write({"users": staff_rows(calendar.start)})
    monthly, nps = MonthlyTruth(), NpsTruth()
    with _TruthFiles(out / "truth") as truth, _BillingFiles(out / "billing") as billing:
        for result in _chunks(settings, workers):
            billing.append(result.billing)
            crm.write(result.crm)
            truth.append(result)
            monthly.merge(result.monthly)
            nps.merge(result.nps)
            counts.update(result.counts)
            _progress(
                f"simulate: chunk {result.number + 1}/{settings.chunks}, customers "
                f"{settings.indexes(result.number).stop:,}/{customers:,}, events "
                f"{counts['event_lines']:,}, churns {counts['churns']:,} "
                f"({result.seconds:.1f}s chunk, {time.monotonic() - started:.1f}s total)"
            )
    crm.close()
    counts["crm_users"] = crm.counts["users"]
    rows = monthly.rows()
    _write_csv(out / "truth" / "churn_monthly.csv", MONTHLY_COLUMNS, rows)
    counts["truth_monthly_rows"] = len(rows)
    _write_csv(out / "truth" / "nps_monthly.csv", NPS_COLUMNS, nps.rows())
    summary = Summary(
        counts,
        time.monotonic() - started,
        iso(calendar.as_of),
        _shapes(stripe_api_version, stripe_upgrade_at, events_style),
    )
    _write_truth_json(out / "truth", settings, summary)
    _progress(
        f"simulate: truth written ({len(rows):,} monthly rows, {counts['churns']:,} churns, "
        f"{counts['saves']:,} saves), {summary.seconds:.1f}s total"
    )
    return summary


def _shapes(stripe_api_version: str, stripe_upgrade_at: str | None, events_style: str) -> str:
    upgrade = f" (older shape before {stripe_upgrade_at})" if stripe_upgrade_at else ""
    billing = f"billing in Stripe API {stripe_api_version}{upgrade}"
    return f"{billing}; events in Segment {events_style} style"


def _day_start(day: str | None) -> int | None:
    """Unix seconds of 00:00 UTC of `day` (YYYY-MM-DD), None for None."""
    if day is None:
        return None
    try:
        moment = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"stripe_upgrade_at {day!r} is not YYYY-MM-DD") from None
    return int(moment.timestamp())


def _clear(out: Path) -> None:
    """A rerun into the same folder leaves nothing of the previous company behind."""
    for folder in ("billing", "events", "surveys", "truth"):
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir(parents=True)


def _chunks(settings: Settings, workers: int | None) -> Iterator[ChunkResult]:
    """Chunk results in chunk order; built in worker processes when there are several."""
    workers = min(workers or os.cpu_count() or 1, settings.chunks)
    if workers <= 1:
        for number in range(settings.chunks):
            yield build_chunk(settings, number)
        return
    # forkserver: workers start clean, never holding a copy of the CRM connection
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque = deque()
        submitted = 0
        while submitted < settings.chunks or pending:
            while submitted < settings.chunks and len(pending) < workers + 1:
                pending.append(pool.submit(build_chunk, settings, submitted))
                submitted += 1
            yield pending.popleft().result()


class _BillingFiles:
    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self):
        self.handles = {
            name: open(self.folder / f"{name}.jsonl", "w", encoding="utf-8")
            for name in BILLING_FILES
        }
        return self

    def append(self, lines: dict[str, list[str]]) -> None:
        for name, handle in self.handles.items():
            if lines[name]:
                handle.write("\n".join(lines[name]) + "\n")

    def __exit__(self, *exc) -> None:
        for handle in self.handles.values():
            handle.close()


class _TruthFiles:
    """churn_events.csv, saves.csv and identity.csv, appended chunk by chunk."""

    FILES = {
        "churn_events": CHURN_COLUMNS,
        "saves": SAVE_COLUMNS,
        "identity": IDENTITY_COLUMNS,
        "customer_months": CUSTOMER_MONTH_COLUMNS,
        "churn_mrr": CHURN_MRR_COLUMNS,
        "customer_nps": CUSTOMER_NPS_COLUMNS,
        "health_signals": HEALTH_SIGNAL_COLUMNS,
        **COMPANY_TABLES,
    }

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self):
        self.handles, self.writers = {}, {}
        for name, header in self.FILES.items():
            handle = open(self.folder / f"{name}.csv", "w", newline="", encoding="utf-8")
            self.handles[name] = handle
            self.writers[name] = csv.writer(handle, lineterminator="\n")
            self.writers[name].writerow(header)
        return self

    def append(self, result: ChunkResult) -> None:
        self.writers["churn_events"].writerows(result.churns)
        self.writers["saves"].writerows(result.saves)
        self.writers["identity"].writerows(result.identity)
        self.writers["customer_months"].writerows(result.customer_months)
        self.writers["churn_mrr"].writerows(result.churn_mrr)
        self.writers["customer_nps"].writerows(result.customer_nps)
        self.writers["health_signals"].writerows(result.health_signals)
        for name, rows in result.marts.items():
            self.writers[name].writerows(rows)

    def __exit__(self, *exc) -> None:
        for handle in self.handles.values():
            handle.close()


def _write_csv(path: Path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def bundle_as_of(bundle: Path) -> datetime:
    """The as_of a simulated bundle's truth is computed at (naive UTC), from its summary.

    It is the end of the run for the bundle's last day: `churnhouse run --date` that
    day (or ingest with that interval end) sees everything the truth counts.
    """
    document = json.loads((Path(bundle) / "truth" / "summary.json").read_text())
    return datetime.fromisoformat(document["as_of"]).astimezone(UTC).replace(tzinfo=None)


def _write_truth_json(folder: Path, settings: Settings, summary: Summary) -> None:
    counts = summary.counts
    bad_input = {key: counts.get(key, 0) for key in BAD_INPUT_KEYS}
    (folder / "bad_input.json").write_text(json.dumps(bad_input, indent=1) + "\n")
    document = {
        "seed": settings.seed,
        "parameters": {
            "customers": settings.customers,
            "months": settings.months,
            "start": settings.start,
            "chunk_size": settings.chunk_size,
            "stripe_api_version": settings.stripe_api_version,
            "stripe_upgrade_at": settings.stripe_upgrade_at,
            "events_style": settings.events_style,
        },
        "as_of": summary.as_of,
        "counts": dict(sorted(counts.items())),
    }
    (folder / "summary.json").write_text(json.dumps(document, indent=1) + "\n")
