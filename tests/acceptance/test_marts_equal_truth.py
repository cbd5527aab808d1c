"""Acceptance (issues 4 and 15): every published table that holds numbers equals the truth.

Simulated companies of several seeds and sizes (Segment wire-style events by default,
one in the warehouse style) are ingested and built with dbt;
`churn_monthly`, `churn_events`, `nps_monthly`, `cancel_saves`,
`engagement_monthly`, `fct_customer_mrr_monthly`, `dim_customers` and
`identity_unmatched` must equal `truth/` in every column their dbt contract
lists (counts and text equal, rates within 1e-9, money to the cent), on DuckDB
and on PostgreSQL, for billing exports in the current Stripe shape, the shape before
2025-03-31 and an account upgraded mid-history. The comparison itself is shown catching planted mistakes: a
cent, a lost churn, a column dropped from the truth, the NPS promoter cut moved
from 9 to 8 and the deflection window moved from 30 to 31 days.
"""

from __future__ import annotations

import csv
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from churnhouse.config import dbt_project_dir, sources_for_bundle
from churnhouse.devkit.acceptance import TRUTH_TABLES, compare_with_truth, mart_contract
from churnhouse.devkit.simulator import bundle_as_of, simulate
from churnhouse.ingest import ingest_bundle_once
from churnhouse.transform import build
from churnhouse.warehouse import open_warehouse

pytestmark = pytest.mark.slow

# A small company with NPS answers of every class and saves on both sides of the 30-day
# deflection edge (tests/unit/test_simulator.py pins that the simulator makes them).
SMALL = {"customers": 80, "months": 10, "seed": 2}


# The Stripe object shapes a company's billing export may hold (docs/sources.md, section 2):
# the current one (the simulator's default), the one before 2025-03-31, and an account
# upgraded mid-history (older invoices in the old shape, the rest in the new one).
CURRENT_SHAPE: dict = {}
OLDER_SHAPE = {"stripe_api_version": "2025-02-24.acacia"}


def upgraded_at(day: str) -> dict:
    return {"stripe_upgrade_at": day}


def simulated_bundle(
    tmp_path_factory,
    customers: int,
    months: int,
    seed: int,
    shape: dict | None = None,
    events_style: str = "wire",
) -> Path:
    folder = f"company_{customers}x{months}_seed{seed}_{events_style}"
    bundle = tmp_path_factory.mktemp(folder) / "bundle"
    simulate(
        out=bundle,
        customers=customers,
        months=months,
        start="2024-01",
        seed=seed,
        workers=1,
        **(shape or CURRENT_SHAPE),
        events_style=events_style,
    )
    return bundle


def build_and_compare(bundle: Path, url: str, select: str | None = None):
    as_of = bundle_as_of(bundle)
    warehouse = open_warehouse(url)
    ingest_bundle_once(sources_for_bundle(bundle), warehouse, as_of)
    build(url, as_of, marts_schema="analytics", select=select)
    return warehouse, compare_with_truth(warehouse, bundle)


def assert_all_equal(comparisons) -> None:
    assert [c.table for c in comparisons] == list(TRUTH_TABLES)
    assert all(c.equal for c in comparisons), "\n".join(c.describe() for c in comparisons)
    empty = [c.table for c in comparisons if c.truth_rows == 0]
    assert not empty, f"a table with no rows proves nothing: {empty}"


def by_table(comparisons) -> dict:
    return {c.table: c for c in comparisons}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """One small company built once on DuckDB; tests that alter it work on copies."""
    bundle = simulated_bundle(tmp_path_factory, **SMALL)
    path = tmp_path_factory.mktemp("small_warehouse") / "warehouse.duckdb"
    _, comparisons = build_and_compare(bundle, str(path))
    return bundle, path, comparisons


def test_a_small_company_equals_the_truth_in_every_column(small):
    _, _, comparisons = small
    assert_all_equal(comparisons)


def test_the_contract_decides_the_columns_compared():
    """Every column of every pinned mart is compared, each by its published type."""
    events = mart_contract("churn_events")
    assert {"crm_account_id", "billing_customer_id"} <= set(events.exact)
    assert events.key == ("customer_key", "churned_at") and events.money == ("mrr_lost",)
    saves = mart_contract("cancel_saves")
    assert saves.key == ("response_id",) and saves.money == ("saved_mrr",)
    assert {"offer_presented", "offer_accepted", "outcome", "deflection_checked_at"} <= set(
        saves.exact
    )
    nps = mart_contract("nps_monthly")
    assert nps.rates == ("nps", "average_score")
    facts = mart_contract("fct_customer_mrr_monthly")
    flags = {"is_active_at_start", "is_active_at_end", "is_new", "is_reactivated", "is_churned"}
    assert flags <= set(facts.exact) and len(facts.money) == 7
    for table in TRUTH_TABLES:
        contract = mart_contract(table)
        compared = set(contract.key + contract.exact + contract.money + contract.rates)
        assert compared == set(contract.columns), table


# Published marts the truth does not pin, and why; any other mart without a truth fails below.
NOT_IN_THE_TRUTH = {
    "churn_reasons": "statements (text), no numbers; pinned row by row in tests/dbt",
    **dict.fromkeys(
        (
            "customer_health",
            "customer_health_monthly",
            "risk_backtest",
            "churn_drivers",
            "loyalty_spend_segments",
            "cohort_retention",
            "customer_ltv",
            "revenue_concentration",
        ),
        "issue 11's marts: compared with the truth by devkit.acceptance_health",
    ),
}


def test_every_published_mart_is_pinned_by_the_truth_or_says_why_not():
    from churnhouse.contracts import PUBLISHED_MARTS

    assert set(TRUTH_TABLES) | set(NOT_IN_THE_TRUTH) == set(PUBLISHED_MARTS)
    assert not set(TRUTH_TABLES) & set(NOT_IN_THE_TRUTH)


def test_the_comparison_catches_a_cent_and_a_lost_churn(small, tmp_path):
    bundle, path, _ = small
    copy = tmp_path / "altered.duckdb"
    shutil.copy(path, copy)
    warehouse = open_warehouse(str(copy))
    with warehouse.transaction() as tx:
        tx.execute(
            "UPDATE analytics.churn_monthly SET mrr_end = mrr_end + 0.01 "
            "WHERE segment = 'all' AND month = (SELECT max(month) FROM analytics.churn_monthly)"
        )
        tx.execute(
            "DELETE FROM analytics.churn_events WHERE churned_at = "
            "(SELECT min(churned_at) FROM analytics.churn_events)"
        )
        tx.execute(
            "UPDATE analytics.dim_customers SET churn_count = churn_count + 1 "
            "WHERE customer_key = (SELECT min(customer_key) FROM analytics.dim_customers)"
        )
    found = by_table(compare_with_truth(warehouse, bundle, tables=TRUTH_TABLES))
    monthly, events = found["churn_monthly"], found["churn_events"]
    assert len(monthly.problems) == 1 and "mrr_end" in monthly.problems[0]
    assert len(events.problems) == 1 and events.problems[0].startswith("missing from the pipeline")
    customers = found["dim_customers"]
    assert len(customers.problems) == 1 and "churn_count" in customers.problems[0]
    others = [c for c in found.values() if c.table not in ("churn_monthly", "churn_events",
                                                            "dim_customers")]  # fmt: skip
    assert all(c.equal for c in others)


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("dim_customers", "churn_count"),
        ("nps_monthly", "average_score"),
        ("cancel_saves", "is_deflection"),
        ("fct_customer_mrr_monthly", "is_reactivated"),
        ("churn_events", "billing_customer_id"),
        ("identity_unmatched", "last_seen_at"),
    ],
)
def test_a_column_dropped_from_the_truth_fails_by_name(small, tmp_path, table, column):
    bundle, path, _ = small
    altered = tmp_path / "bundle"
    shutil.copytree(bundle / "truth", altered / "truth")
    with open(altered / "truth" / f"{table}.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = [name for name in rows[0] if name != column]
    with open(altered / "truth" / f"{table}.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (comparison,) = compare_with_truth(open_warehouse(str(path)), altered, tables=(table,))
    assert comparison.problems == [
        f"column {column}: published by the pipeline, missing from the truth"
    ]


def test_a_table_missing_from_the_truth_fails(small, tmp_path):
    bundle, path, _ = small
    shutil.copytree(bundle / "truth", tmp_path / "bundle" / "truth")
    (tmp_path / "bundle" / "truth" / "nps_monthly.csv").unlink()
    (comparison,) = compare_with_truth(
        open_warehouse(str(path)), tmp_path / "bundle", tables=("nps_monthly",)
    )
    assert comparison.problems == ["the truth has no nps_monthly.csv"]


def _plant(project: Path, relative: str, old: str, new: str) -> None:
    path = project / relative
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{relative} no longer holds {old!r}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.slow
def test_planted_mistakes_in_the_models_fail_the_comparison(small, tmp_path, monkeypatch):
    """A copy of the dbt project with the NPS promoter cut at 8 and a 31-day deflection
    window, built on the small company (models only: their unit tests stop a full build),
    differs from the truth where those mistakes land, and nowhere else."""
    bundle, _, _ = small
    project = tmp_path / "dbt_project"
    shutil.copytree(dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs"))
    _plant(
        project,
        "models/intermediate/int_nps_responses_resolved.sql",
        "when responses.score >= 9 then 'promoter'",
        "when responses.score >= 8 then 'promoter'",
    )
    _plant(
        project,
        "models/marts/cancel_saves.sql",
        "{{ dbt.dateadd('day', 30, 'submitted_at') }} as deflection_checked_at",
        "{{ dbt.dateadd('day', 31, 'submitted_at') }} as deflection_checked_at",
    )
    monkeypatch.setenv("CHURN_DBT_PROJECT_DIR", str(project))
    # models only: neither the data tests nor the unit tests of the selected models
    monkeypatch.setenv("DBT_INDIRECT_SELECTION", "empty")
    _, comparisons = build_and_compare(
        bundle, str(tmp_path / "planted.duckdb"), select="resource_type:model"
    )
    found = by_table(comparisons)
    nps = found["nps_monthly"]
    assert any(" promoters: " in p for p in nps.problems), nps.describe()
    assert any(" passives: " in p for p in nps.problems), nps.describe()
    assert any(" nps: " in p for p in nps.problems), nps.describe()
    saves = found["cancel_saves"]
    assert any(" deflection_checked_at: " in p for p in saves.problems), saves.describe()
    # the save whose customer left an hour after day 30: a deflection, not one at day 31
    edge = [p for p in saves.problems if " is_deflection: truth 'true', pipeline 'false'" in p]
    assert edge, saves.describe(limit=50)
    untouched = [c for c in comparisons if c.table not in ("nps_monthly", "cancel_saves")]
    assert all(c.equal for c in untouched), "\n".join(c.describe() for c in untouched)


def test_the_small_company_has_saves_on_both_sides_of_the_edge(small):
    """What the planted-mistake test relies on, stated: saves an hour either side of day 30."""
    bundle, _, _ = small
    with open(bundle / "truth" / "cancel_saves.csv", encoding="utf-8", newline="") as handle:
        saves = [row for row in csv.DictReader(handle) if row["is_save"] == "true"]
    with open(bundle / "truth" / "churn_events.csv", encoding="utf-8", newline="") as handle:
        churns = list(csv.DictReader(handle))
    sides = set()
    for save in saves:
        checked = datetime.fromisoformat(save["deflection_checked_at"])
        for churn in churns:
            if churn["customer_key"] != save["customer_key"]:
                continue
            gap = datetime.fromisoformat(churn["churned_at"]) - checked
            if abs(gap) <= timedelta(hours=2):
                sides.add((gap > timedelta(0), save["is_deflection"]))
    assert sides == {(True, "true"), (False, "false")}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("customers", "months", "seed", "shape"),
    [
        (150, 12, 3, CURRENT_SHAPE),
        (400, 24, 11, upgraded_at("2025-01-01")),
        (80, 18, 5, OLDER_SHAPE),
    ],
    ids=["150x12-seed3", "400x24-seed11-upgraded", "80x18-seed5-older-stripe"],
)
def test_duckdb_marts_equal_the_truth(tmp_path_factory, tmp_path, customers, months, seed, shape):
    bundle = simulated_bundle(tmp_path_factory, customers, months, seed, shape)
    _, comparisons = build_and_compare(bundle, str(tmp_path / "warehouse.duckdb"))
    assert_all_equal(comparisons)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("customers", "months", "seed", "shape"),
    [
        (150, 12, 3, CURRENT_SHAPE),
        (120, 15, 8, OLDER_SHAPE),
        (80, 10, 2, upgraded_at("2024-06-01")),
    ],
    ids=["150x12-seed3", "120x15-seed8-older-stripe", "80x10-seed2-upgraded"],
)
def test_postgres_marts_equal_the_truth(
    tmp_path_factory, postgres_url, customers, months, seed, shape
):
    bundle = simulated_bundle(tmp_path_factory, customers, months, seed, shape)
    _, comparisons = build_and_compare(bundle, postgres_url)
    assert_all_equal(comparisons)


@pytest.mark.slow
def test_warehouse_style_events_equal_the_truth(tmp_path_factory, tmp_path):
    """The same company with snake_case (warehouse style) event files gives the same marts."""
    bundle = simulated_bundle(tmp_path_factory, 60, 8, 4, events_style="warehouse")
    _, comparisons = build_and_compare(bundle, str(tmp_path / "warehouse.duckdb"))
    assert_all_equal(comparisons)
