"""The marts gate stops a poisoned night and names every failed expectation."""

from __future__ import annotations

from datetime import datetime

import pytest

from churnhouse.contracts import RunWindow
from churnhouse.gates import GateFailed, run_marts_gate
from churnhouse.load import ensure_raw_tables
from churnhouse.sources import all_raw_tables

RUN = RunWindow("night-1", datetime(2024, 3, 31), datetime(2024, 4, 1))

MONTHLY = """
CREATE TABLE analytics_audit.churn_monthly AS
SELECT DATE '2024-03-01' AS month, 'all' AS segment, 'all' AS region,
       10 AS customers_start, 1 AS new_customers, 0 AS reactivated_customers,
       2 AS churned_customers, 9 AS customers_end, CAST({rate} AS DOUBLE PRECISION) AS logo_churn_rate,
       CAST(0 AS DECIMAL(18, 2)) AS mrr_start, CAST({mrr_end} AS DECIMAL(18, 2)) AS new_mrr,
       CAST(0 AS DECIMAL(18, 2)) AS reactivation_mrr, CAST(0 AS DECIMAL(18, 2)) AS expansion_mrr,
       CAST(0 AS DECIMAL(18, 2)) AS contraction_mrr, CAST(0 AS DECIMAL(18, 2)) AS churned_mrr,
       CAST({mrr_end} AS DECIMAL(18, 2)) AS mrr_end, CAST(0.1 AS DOUBLE PRECISION) AS gross_revenue_churn_rate,
       CAST(0.9 AS DOUBLE PRECISION) AS net_revenue_retention
"""

EVENTS = """
CREATE TABLE analytics_audit.churn_events AS
SELECT CAST({key} AS TEXT) AS customer_key, TIMESTAMP '2024-03-10 00:00:00' AS churned_at,
       'voluntary' AS churn_type, CAST({category} AS TEXT) AS reason_category,
       'other' AS archetype, CAST(120.00 AS DECIMAL(18, 2)) AS mrr_lost, 40 AS tenure_days
"""


@pytest.fixture
def marts_warehouse(warehouse):
    """Raw tables and seeds as dbt leaves them, and an empty audit schema."""
    with warehouse.transaction() as tx:
        ensure_raw_tables(tx, [t for tables in all_raw_tables().values() for t in tables])
        tx.execute("CREATE SCHEMA analytics_audit")
        # dbt seeds these before the marts are built; the reconciliation reads one.
        tx.execute("CREATE SCHEMA seeds")
        tx.execute("CREATE TABLE seeds.zero_decimal_currencies AS SELECT 'jpy' AS currency")
    return warehouse


def build(warehouse, rate="0.2", key="'acc_000001'", category="'price'", mrr_end="0"):
    with warehouse.transaction() as tx:
        tx.execute(MONTHLY.format(rate=rate, mrr_end=mrr_end))
        tx.execute(EVENTS.format(key=key, category=category))


def test_a_sound_night_passes(marts_warehouse):
    build(marts_warehouse)
    outcomes = run_marts_gate(marts_warehouse, RUN)
    assert all(outcome.success for outcome in outcomes)
    # The marts' own rules (keys, accepted values, rates in range) are dbt's tests; the
    # gate checks what dbt cannot: MRR reconciled with raw billing, no personal data.
    assert {outcome.suite for outcome in outcomes} == {
        "marts_mrr_reconciliation",
        "marts_no_personal_data",
    }


def test_a_poisoned_night_is_stopped_with_each_failure_named(marts_warehouse):
    build(marts_warehouse, key="'ops@example-widgets.com'")
    with pytest.raises(GateFailed) as failure:
        run_marts_gate(marts_warehouse, RUN)
    message = str(failure.value)
    assert (
        "expect_column_values_to_not_match_regex on value (1 rows): e.g. ['ops@example-widgets.com']"
        in message
    )
    with marts_warehouse.transaction() as tx:
        failed = tx.fetchall(
            "SELECT suite FROM raw._validation_runs WHERE NOT success ORDER BY suite"
        )
    assert failed == [("marts_no_personal_data",)]


def write_yen_billing(warehouse) -> None:
    """One paid invoice: 120,000 JPY for March 2024 (zero-decimal: whole yen), at 0.0067 USD
    a yen = 804.00 USD of MRR at the close of March; a proration line that never counts."""
    with warehouse.transaction() as tx:
        tx.execute(
            "INSERT INTO raw.billing_subscriptions (id, customer, status) "
            "VALUES ('sub_1', 'cus_1', 'active')"
        )
        tx.execute(
            "INSERT INTO raw.billing_invoices (id, customer, subscription, status, currency) "
            "VALUES ('in_1', 'cus_1', 'sub_1', 'paid', 'jpy')"
        )
        for line_id, amount, proration in (("il_1", 120000, False), ("il_2", 5000, True)):
            tx.execute(
                "INSERT INTO raw.billing_invoice_lines (invoice_id, line_id, subscription, "
                "currency, recurring_interval, recurring_interval_count, amount, period_start, "
                "period_end, proration) VALUES ('in_1', ?, 'sub_1', 'JPY', 'month', 1, ?, "
                "TIMESTAMP '2024-03-01 00:00:00', TIMESTAMP '2024-04-01 00:00:00', ?)",
                [line_id, amount, proration],
            )
        tx.execute("INSERT INTO raw.fx_rates (currency, month, rate_to_usd) VALUES "
                   "('jpy', '2024-03', '0.0067'), ('jpy', '2024-02', '0.0070')")  # fmt: skip


def test_the_mrr_reconciliation_passes_when_the_lines_add_up(marts_warehouse):
    write_yen_billing(marts_warehouse)
    build(marts_warehouse, mrr_end="804.00")
    outcomes = {o.suite: o for o in run_marts_gate(marts_warehouse, RUN)}
    assert outcomes["marts_mrr_reconciliation"].success


def test_the_mrr_reconciliation_stops_a_total_the_lines_do_not_give(marts_warehouse):
    """Yen read as cents (8.04 instead of 804.00): the night stops, naming the difference."""
    write_yen_billing(marts_warehouse)
    build(marts_warehouse, mrr_end="8.04")
    with pytest.raises(GateFailed) as failure:
        run_marts_gate(marts_warehouse, RUN)
    message = str(failure.value)
    assert "expect_column_values_to_be_between on difference (1 rows): e.g. [-795.96]" in message
    with marts_warehouse.transaction() as tx:
        failed = tx.fetchall("SELECT suite FROM raw._validation_runs WHERE NOT success")
    assert failed == [("marts_mrr_reconciliation",)]


def apply_ten_percent_coupon(warehouse) -> None:
    """A 10 % coupon on the 120,000 JPY line: 12,000 JPY off."""
    with warehouse.transaction() as tx:
        tx.execute(
            "UPDATE raw.billing_invoice_lines SET discount_amount = 12000 WHERE line_id = 'il_1'"
        )


def test_the_mrr_reconciliation_counts_lines_net_of_their_discounts(marts_warehouse):
    """A 10 % coupon on the yen line: 108,000 JPY net = 723.60 USD, not 804.00."""
    write_yen_billing(marts_warehouse)
    apply_ten_percent_coupon(marts_warehouse)
    build(marts_warehouse, mrr_end="723.60")
    outcomes = {o.suite: o for o in run_marts_gate(marts_warehouse, RUN)}
    assert outcomes["marts_mrr_reconciliation"].success


def publish_night(warehouse, mrr_end: str) -> None:
    """Build the audit schema with `mrr_end` and publish it as tonight's as_of."""
    build(warehouse, mrr_end=mrr_end)
    warehouse.publish_audit("analytics_audit", "analytics", RUN.run_id, RUN.interval_end)
    with warehouse.transaction() as tx:
        tx.execute("DROP SCHEMA IF EXISTS analytics_audit CASCADE")
        tx.execute("CREATE SCHEMA analytics_audit")


NEXT = RunWindow("night-2", datetime(2024, 4, 1), datetime(2024, 4, 2))


def test_a_night_whose_closed_months_collapse_is_stopped_naming_the_figure(marts_warehouse):
    publish_night(marts_warehouse, mrr_end="804.00")
    build(marts_warehouse, mrr_end="0")
    with pytest.raises(GateFailed) as failure:
        run_marts_gate(marts_warehouse, NEXT)
    message = str(failure.value)
    assert (
        "total MRR at the close of 2024-03: published 804.00, tonight 0.00 (100% moved" in message
    )
    assert "active customers" not in message and "churn rows" not in message
    with marts_warehouse.transaction() as tx:
        failed = tx.fetchall("SELECT suite FROM raw._validation_runs WHERE NOT success")
    assert ("marts_against_published",) in failed


def test_a_night_that_nudges_its_closed_months_passes_the_collapse_check(marts_warehouse):
    """A coupon applied late takes 10 % off a closed month: a nudge, not a collapse."""
    write_yen_billing(marts_warehouse)
    publish_night(marts_warehouse, mrr_end="804.00")
    apply_ten_percent_coupon(marts_warehouse)
    build(marts_warehouse, mrr_end="723.60")
    outcomes = {o.suite: o for o in run_marts_gate(marts_warehouse, NEXT)}
    assert outcomes["marts_against_published"].success
    assert outcomes["marts_against_published"].evaluated == 1
