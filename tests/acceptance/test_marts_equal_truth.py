"""Issue 4's acceptance: the modeled churn tables equal the simulator's ground truth.

Simulated companies of several seeds and sizes are ingested and built with dbt;
`churn_monthly` and `churn_events` must equal `truth/` exactly (counts equal,
rates within 1e-9, money to the cent), on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from churnhouse.config import sources_for_bundle
from churnhouse.devkit.acceptance import compare_with_truth
from churnhouse.devkit.simulator import bundle_as_of, simulate
from churnhouse.ingest import ingest_bundle_once
from churnhouse.transform import build
from churnhouse.warehouse import open_warehouse

pytestmark = pytest.mark.slow


def simulated_bundle(tmp_path_factory, customers: int, months: int, seed: int) -> Path:
    bundle = tmp_path_factory.mktemp(f"company_{customers}x{months}_seed{seed}") / "bundle"
    simulate(out=bundle, customers=customers, months=months, start="2024-01", seed=seed, workers=1)
    return bundle


def build_and_compare(bundle: Path, url: str):
    as_of = bundle_as_of(bundle)
    warehouse = open_warehouse(url)
    ingest_bundle_once(sources_for_bundle(bundle), warehouse, as_of)
    build(url, as_of, marts_schema="analytics")
    return warehouse, compare_with_truth(warehouse, bundle)


def assert_all_equal(comparisons) -> None:
    assert all(c.equal for c in comparisons), "\n".join(c.describe() for c in comparisons)
    assert all(c.truth_rows > 0 for c in comparisons), "a company with no churn proves nothing"


@pytest.mark.parametrize(
    ("customers", "months", "seed"),
    [(150, 12, 3), (400, 24, 11), (80, 18, 5)],
    ids=["150x12-seed3", "400x24-seed11", "80x18-seed5"],
)
def test_duckdb_marts_equal_the_truth(tmp_path_factory, tmp_path, customers, months, seed):
    bundle = simulated_bundle(tmp_path_factory, customers, months, seed)
    _, comparisons = build_and_compare(bundle, str(tmp_path / "warehouse.duckdb"))
    assert_all_equal(comparisons)


@pytest.mark.parametrize(("customers", "months", "seed"), [(150, 12, 3), (120, 15, 8)])
def test_postgres_marts_equal_the_truth(tmp_path_factory, postgres_url, customers, months, seed):
    bundle = simulated_bundle(tmp_path_factory, customers, months, seed)
    _, comparisons = build_and_compare(bundle, postgres_url)
    assert_all_equal(comparisons)


def test_the_comparison_catches_a_cent_and_a_lost_churn(tmp_path_factory, tmp_path):
    bundle = simulated_bundle(tmp_path_factory, 60, 8, 2)
    warehouse, comparisons = build_and_compare(bundle, str(tmp_path / "w.duckdb"))
    assert_all_equal(comparisons)
    with warehouse.transaction() as tx:
        tx.execute(
            "UPDATE analytics.churn_monthly SET mrr_end = mrr_end + 0.01 "
            "WHERE segment = 'all' AND month = (SELECT max(month) FROM analytics.churn_monthly)"
        )
        tx.execute(
            "DELETE FROM analytics.churn_events WHERE churned_at = "
            "(SELECT min(churned_at) FROM analytics.churn_events)"
        )
    monthly, events = compare_with_truth(warehouse, bundle)
    assert len(monthly.problems) == 1 and "mrr_end" in monthly.problems[0]
    assert len(events.problems) == 1 and events.problems[0].startswith("missing from the pipeline")
