"""`make demo`: a simulated company through the nightly DAG into DuckDB, then a short summary."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from churnhouse.config import churn_home, project_dir

DEMO = {"customers": 300, "months": 12, "start": "2024-01", "seed": 7}


def _ensure_bundle(bundle: Path) -> None:
    from churnhouse.devkit.simulator import simulate

    stamp = bundle / "truth" / "summary.json"
    if stamp.exists():
        print(f"reusing the simulated company in {bundle}")
        return
    summary = simulate(out=bundle, crm_url=None, **DEMO)
    print(summary.describe())


def _print_summary(warehouse_url: str) -> None:
    from churnhouse.gates import data_docs_dir
    from churnhouse.sources import all_raw_tables
    from churnhouse.warehouse import open_warehouse

    raw = [table.qualified_name for tables in all_raw_tables().values() for table in tables]
    with open_warehouse(warehouse_url).transaction() as tx:
        tables = {table: tx.fetchone(f"SELECT count(*) FROM {table}")[0] for table in raw}
        quarantined = dict(tx.fetchall("SELECT source, count(*) FROM raw._quarantine GROUP BY 1"))
        gates = tx.fetchall(
            "SELECT boundary, count(*), sum(CASE WHEN success THEN 1 ELSE 0 END), "
            "sum(evaluated) FROM raw._validation_runs "
            "WHERE run_id = (SELECT max(run_id) FROM raw._validation_runs) "
            "GROUP BY boundary ORDER BY boundary DESC"
        )
    print("\nraw layer (rows now; bad records quarantined by source):")
    for table, rows in tables.items():
        print(f"  {table:<26} {rows:>10,}")
    print("  quarantined: " + ", ".join(f"{s} {n:,}" for s, n in sorted(quarantined.items())))
    print("\nGreat Expectations gates of the night:")
    for boundary, suites, passed, checks in gates:
        print(f"  {boundary:<6} {passed}/{suites} suites passed ({checks} expectations)")
    print(f"  Data Docs: {data_docs_dir() / 'index.html'}")


# Portable SQL: the same summary reads DuckDB's published file or PostgreSQL's schema.
SUMMARY_SQL = """
SELECT substr(CAST(month AS VARCHAR), 1, 7) AS month, customers_end AS customers,
       CAST(100 * logo_churn_rate AS NUMERIC(7, 1)) AS logo_churn_pct,
       CAST(100 * gross_revenue_churn_rate AS NUMERIC(7, 1)) AS revenue_churn_pct,
       CAST(100 * net_revenue_retention AS NUMERIC(7, 1)) AS nrr_pct, mrr_end
FROM churn_monthly WHERE segment = 'all' AND region = 'all'
ORDER BY month DESC LIMIT 6
"""

REASONS_SQL = """
SELECT reason_category, count(*) AS churns, round(sum(mrr_lost), 2) AS mrr_lost
FROM churn_events GROUP BY reason_category ORDER BY churns DESC, reason_category LIMIT 5
"""


def _print_marts(warehouse_url: str) -> None:
    from churnhouse.query import render, run_query
    from churnhouse.warehouse import open_warehouse

    warehouse = open_warehouse(warehouse_url)
    for title, sql in (
        ("last 6 months (all customers)", SUMMARY_SQL),
        ("top reasons", REASONS_SQL),
    ):
        try:
            columns, rows = run_query(warehouse, sql)
        except FileNotFoundError as error:
            print(f"\n(no published tables yet: {error})")
            return
        print(f"\n{title}:")
        print(render(columns, rows, "table"))


def _print_actions(warehouse_url: str) -> None:
    from churnhouse.devkit.demo_actions import print_actions
    from churnhouse.warehouse import open_warehouse

    try:
        print_actions(open_warehouse(warehouse_url))
    except FileNotFoundError:
        return  # _print_marts said that nothing is published yet


def _print_truth_check(warehouse_url: str, bundle: Path) -> None:
    from churnhouse.devkit.acceptance import compare_published_with_truth
    from churnhouse.warehouse import open_warehouse

    warehouse = open_warehouse(warehouse_url)
    print("\npublished tables against the simulator's truth:")
    for comparison in compare_published_with_truth(warehouse, bundle):
        print(f"  {comparison.describe(limit=5)}")
    _print_health_truth_check(warehouse, bundle)


def _print_health_truth_check(warehouse, bundle: Path) -> None:
    from churnhouse.devkit.acceptance_health import compare_published_health_with_truth

    if not (bundle / "truth" / "customer_months.csv").exists():
        return  # a bundle simulated before these truth files existed
    for comparison in compare_published_health_with_truth(warehouse, bundle):
        print(f"  {comparison.describe(limit=5)}")


def example_alerts() -> Path:
    """The commented example routing file shipped with the project."""
    return project_dir() / "docs" / "alerts.example.yaml"


DEMO_LOOKBACK_DAYS = 31


def print_alerts_dry_run(warehouse_url: str, config_path: Path | None = None) -> None:
    """`churnhouse alerts --dry-run` with the example routing file: what would be sent.

    The example's connections get placeholder URLs when undefined (a dry run contacts
    nothing), and the first-night look-back is widened so a month of items shows.
    """
    from dataclasses import replace

    import yaml

    from churnhouse.alerts.config import load_config
    from churnhouse.alerts.night import dry_run
    from churnhouse.warehouse import open_warehouse

    config_path = config_path or example_alerts()
    document = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    for team in document["teams"]:
        for channel in team["channels"]:
            variable = f"AIRFLOW_CONN_{channel['connection'].upper()}"
            os.environ.setdefault(variable, f"https://hooks.example.com/{channel['connection']}")
    config = replace(load_config(config_path), lookback_days=DEMO_LOOKBACK_DAYS)
    print(f"\nalerts (dry run of {config_path.name}, look-back {DEMO_LOOKBACK_DAYS} days):")
    print(dry_run(config, open_warehouse(warehouse_url)))


def print_night(warehouse_url: str, bundle: Path) -> None:
    """The raw layer, the gates, the last six months, top reasons, who is at risk and what
    to fix first, and the truth check."""
    _print_summary(warehouse_url)
    _print_marts(warehouse_url)
    _print_actions(warehouse_url)
    _print_truth_check(warehouse_url, bundle)


def main() -> int:
    from churnhouse.dashboard import dashboard_dir
    from churnhouse.devkit.simulator import bundle_as_of
    from churnhouse.runner import run_day

    started = time.monotonic()
    home = churn_home()
    bundle = home / "demo-bundle"
    warehouse = os.environ.get("CHURN_WAREHOUSE") or str(home / "warehouse.duckdb")
    _ensure_bundle(bundle)
    day = (bundle_as_of(bundle) - timedelta(days=1)).date()
    code = run_day(day, {"CHURN_BUNDLE": str(bundle), "CHURN_WAREHOUSE": warehouse})
    if code != 0:
        return code
    print_night(warehouse, bundle)
    print_alerts_dry_run(warehouse)
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s; warehouse: {warehouse}")
    index = dashboard_dir() / "index.html"
    if index.exists():
        print(f"dashboard: {index}  (or `churnhouse dashboard` serves it on 127.0.0.1:8050)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
