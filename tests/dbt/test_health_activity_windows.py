"""The health signals' activity figures against their definition, counted day by day.

`int_customer_health_signals` counts a workspace's activity from half-month summaries
(first and last active day per user), and takes as_of's own half month from the days.
Here a simulated company is built as of instants inside either half of a month and on
its first day, and every customer and instant is checked against a plain count over the
daily activity: the last active day before the instant's day, and the distinct users of
the 30 days before it and of the 30 days before those.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from churnhouse.config import sources_for_bundle
from churnhouse.devkit.simulator import bundle_as_of, simulate
from churnhouse.ingest import ingest_bundle_once
from churnhouse.transform import build
from churnhouse.warehouse import open_warehouse

pytestmark = pytest.mark.slow  # simulates a company and builds it with dbt

SIGNALS = "intermediate.int_customer_health_signals"
DAYS = "intermediate.int_activity_aggregated_to_daily_users"

# Each customer-instant's activity counted from the days, as docs/metrics.md defines it.
COUNTED_FROM_DAYS = f"""
    select
        signals.customer_key,
        signals.evaluated_at,
        (select max(days.activity_date) from {DAYS} as days
         where days.workspace_id = signals.workspace_id
           and days.activity_date < cast(signals.evaluated_at as date)) as last_active_on,
        (select count(distinct days.user_id) from {DAYS} as days
         where days.workspace_id = signals.workspace_id
           and days.activity_date >= cast(signals.evaluated_at as date) - 30
           and days.activity_date < cast(signals.evaluated_at as date)) as active_users_30d,
        (select count(distinct days.user_id) from {DAYS} as days
         where days.workspace_id = signals.workspace_id
           and days.activity_date >= cast(signals.evaluated_at as date) - 60
           and days.activity_date < cast(signals.evaluated_at as date) - 30)
            as active_users_prev_30d
    from {SIGNALS} as signals
    where signals.workspace_id is not null
"""

AS_MODELLED = f"""
    select
        customer_key,
        evaluated_at,
        last_active_on,
        coalesce(active_users_30d, 0) as active_users_30d,
        coalesce(active_users_prev_30d, 0) as active_users_prev_30d
    from {SIGNALS}
    where workspace_id is not null
"""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> str:
    bundle = tmp_path_factory.mktemp("health_windows") / "bundle"
    simulate(out=bundle, customers=150, months=5, start="2024-01", seed=7, workers=1)
    url = str(bundle.parent / "warehouse.duckdb")
    ingest_bundle_once(sources_for_bundle(bundle), open_warehouse(url), bundle_as_of(bundle))
    return url


@pytest.mark.parametrize(
    "as_of",
    [
        datetime(2024, 4, 20, 9, 30),  # inside a second half month
        datetime(2024, 4, 7),  # inside a first half month
        datetime(2024, 4, 16),  # on the first day of a half month
    ],
    ids=["second-half", "first-half", "half-start"],
)
def test_activity_signals_equal_a_count_over_the_days(simulated, as_of):
    build(simulated, as_of, select="+int_customer_health_signals")
    warehouse = open_warehouse(simulated)
    with warehouse.transaction() as tx:
        expected = sorted(
            (key, at, last, int(users), int(before))
            for key, at, last, users, before in tx.fetchall(COUNTED_FROM_DAYS)
        )
        modelled = sorted(tuple(row) for row in tx.fetchall(AS_MODELLED))
        at_as_of = tx.fetchall(f"select count(*) from {SIGNALS} where is_as_of")[0][0]
    assert at_as_of > 20
    assert any(row[2] is not None for row in expected)
    assert any(row[3] > 0 and row[4] > 0 for row in expected)
    assert modelled == expected
