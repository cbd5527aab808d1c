"""The per-customer models (MRR timeline, month facts, reasons) computed again only for the
customers whose inputs changed, with the result of a full refresh.

What a night can bring them: an invoice restated months later, an invoice voided, an
exchange rate corrected, a CRM account version arriving late, a late cancellation survey,
a month that closes, and a re-run for an earlier day. After each, the incremental build
equals a full refresh; rows of customers whose inputs did not change are not touched
(a value planted in them survives the night), and are computed again once they change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from company import AS_OF, Company, build_company, query

from churnhouse.transform import build
from churnhouse.warehouse import open_warehouse

pytestmark = pytest.mark.slow  # each builds a company with dbt several times

NEXT_MONTH = datetime(2024, 8, 1)

# The per-customer models and the marts built from them, each in a stable order.
PER_CUSTOMER_TABLES = {
    "intermediate.int_customer_mrr_timeline": "customer_key, valid_from",
    "intermediate.int_customer_mrr_months_classified": "customer_key, month_start",
    "intermediate.int_churns_reasoned": "customer_key, churned_at",
    "analytics.fct_customer_mrr_monthly": "customer_key, month",
    "analytics.churn_reasons": "customer_key, source, source_record_id, churned_at",
}


def tables(url: str) -> dict[str, list[tuple]]:
    return {
        name: query(url, f"SELECT * FROM {name} ORDER BY {order}")
        for name, order in PER_CUSTOMER_TABLES.items()
    }


def execute(url: str, *statements: str) -> None:
    with open_warehouse(url).transaction() as tx:
        for statement in statements:
            tx.execute(statement)


def restated_and_late_inputs(url: str, loaded_at: datetime) -> None:
    """cus_01's February invoice restated (100.00 -> 120.00), cus_08's March invoice of
    its second subscription voided, the February EUR rate corrected (acc_02's yearly
    line), acc_04 moved to mid_market from 15 Feb by a CRM version that arrives late, and
    a cancellation survey for acc_09's March churn submitted late."""
    stamp = f"TIMESTAMP '{loaded_at:%Y-%m-%d %H:%M:%S}'"
    execute(
        url,
        f"UPDATE raw.billing_invoice_lines SET amount = 12000, unit_amount = 12000, "
        f"_loaded_at = {stamp} WHERE invoice_id = ("
        "SELECT id FROM raw.billing_invoices WHERE subscription = 'sub_01' "
        "AND created = TIMESTAMP '2024-02-01 00:00:00')",
        f"UPDATE raw.billing_invoices SET status = 'void', _loaded_at = {stamp} "
        "WHERE subscription = 'sub_08b' AND created = TIMESTAMP '2024-03-01 00:00:00'",
        f"UPDATE raw.fx_rates SET rate_to_usd = 1.10, _loaded_at = {stamp} "
        "WHERE lower(currency) = 'eur' AND month = '2024-02'",
    )
    late = Company()
    late.account(
        "acc_04", "mid_market", "emea", "2024-02-15", domain="Umbrella.com", workspace_id="ws_04"
    )
    late.cancellation(
        "resp_late_09",
        "2024-02-25T10:00:00Z",
        "it@cyberdyne.com",
        "sub_09a",
        "missing_features",
        "",
        "canceled",
    )
    for rows in late.rows.values():
        for row in rows:
            row["_loaded_at"] = loaded_at
    late.write(url)


def assert_incremental_nights_equal_a_full_refresh(url: str) -> None:
    build_company().write(url)
    build(url, AS_OF, marts_schema="analytics")
    before = tables(url)
    assert all(before.values())  # every table has rows

    # A night a month later, with late and restated inputs.
    restated_and_late_inputs(url, AS_OF + timedelta(days=31))
    build(url, NEXT_MONTH, marts_schema="analytics")
    incremental = tables(url)
    assert all(incremental[name] != before[name] for name in PER_CUSTOMER_TABLES)
    build(url, NEXT_MONTH, marts_schema="analytics", full_refresh=True)
    assert tables(url) == incremental

    # The night re-run for the earlier day: July is no longer reported.
    build(url, AS_OF, marts_schema="analytics")
    rerun = tables(url)
    build(url, AS_OF, marts_schema="analytics", full_refresh=True)
    assert tables(url) == rerun


def test_incremental_nights_equal_a_full_refresh(tmp_path: Path):
    assert_incremental_nights_equal_a_full_refresh(str(tmp_path / "warehouse.duckdb"))


@pytest.mark.postgres
def test_incremental_nights_equal_a_full_refresh_on_postgres(postgres_url):
    assert_incremental_nights_equal_a_full_refresh(postgres_url)


# A wrong value planted in one unchanged customer's rows of each table (acc_07 is
# mid_market, its churn involuntary). Not acc_07's timeline: its MRR makes the churn that
# its reasons are computed from.
PLANTED = {  # table: (column, planted value as SQL, customer)
    "intermediate.int_customer_mrr_timeline": ("mrr_usd", "4242", "acc_04"),
    "intermediate.int_customer_mrr_months_classified": ("segment", "'enterprise'", "acc_07"),
    "intermediate.int_churns_reasoned": ("reason_category", "'other'", "acc_07"),
    "analytics.fct_customer_mrr_monthly": ("segment", "'enterprise'", "acc_07"),
    "analytics.churn_reasons": ("raw_text", "'planted'", "acc_06"),
}


def planted_rows(url: str) -> dict[str, int]:
    return {
        name: query(
            url,
            f"SELECT count(*) FROM {name} WHERE {column} = {value} AND customer_key = '{customer}'",
        )[0][0]
        for name, (column, value, customer) in PLANTED.items()
    }


def test_a_night_leaves_the_rows_of_unchanged_customers_alone(tmp_path: Path):
    url = str(tmp_path / "warehouse.duckdb")
    build_company().write(url)
    build(url, AS_OF, marts_schema="analytics")
    execute(
        url,
        *(
            f"UPDATE {name} SET {column} = {value} WHERE customer_key = '{customer}'"
            for name, (column, value, customer) in PLANTED.items()
        ),
    )
    planted = planted_rows(url)
    assert all(planted.values())

    # Other customers' inputs change, and a month closes: the planted rows stay.
    restated_and_late_inputs(url, AS_OF + timedelta(days=31))
    build(url, NEXT_MONTH, marts_schema="analytics")
    assert planted_rows(url) == planted

    # Their own inputs change: their rows are computed again.
    execute(
        url,
        "UPDATE raw.billing_invoice_lines SET amount = 21000 WHERE invoice_id IN ("
        "SELECT id FROM raw.billing_invoices WHERE subscription = 'sub_04' "
        "AND created = TIMESTAMP '2024-02-24 00:00:00' OR subscription = 'sub_07' "
        "AND created = TIMESTAMP '2024-03-01 00:00:00')",  # acc_07's MRR lost changes
        "UPDATE raw.survey_cancellations SET reason_text = 'Too many bugs' "
        "WHERE response_id = 'resp_06'",
    )
    build(url, NEXT_MONTH, marts_schema="analytics")
    assert planted_rows(url) == dict.fromkeys(PLANTED, 0)
