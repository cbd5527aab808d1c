"""How `transform.build` behaves across runs: incremental equals full refresh, a missing
exchange rate stops the build naming currency and month."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from company import AS_OF, Company, build_company, query

from churnhouse.contracts import PUBLISHED_MARTS
from churnhouse.transform import DbtBuildError, build
from churnhouse.warehouse import open_warehouse

pytestmark = pytest.mark.slow  # each builds a company with dbt


ENGAGEMENT = "int_activity_calls_assigned_to_workspaces+"


def late_events(loaded_at: datetime) -> Company:
    """Events that arrive days after they happened, loaded at `loaded_at`."""
    late = Company()
    late.event("late_01_u9", "ws_01", "u9", "2024-06-03T08:00:00")  # a new user on a known day
    late.event("late_01_u1", "ws_01", "u1", "2024-06-03T23:59:59")  # more calls, same user/day
    late.event("late_07_u72", "ws_07", "u72", "2024-03-10T09:00:00")  # months late
    # u5's track call carries no group id: a group call ties u5 to ws_07 a week before it.
    late.event("late_u5_group_07", "ws_07", "u5", "2024-03-05T08:00:00", name=None, kind="group")
    late.event("late_u5_track", None, "u5", "2024-03-12T09:00:00")
    for row in late.rows["events"]:
        row["_loaded_at"] = loaded_at
    return late


def later_group_call(loaded_at: datetime) -> Company:
    """A group call arriving after u5's track call: since 10 March u5 works in ws_01."""
    late = Company()
    late.event("later_u5_group_01", "ws_01", "u5", "2024-03-10T00:00:00", name=None, kind="group")
    for row in late.rows["events"]:
        row["_loaded_at"] = loaded_at
    return late


def march_users(url: str, customer: str) -> int:
    (users,) = query(
        url,
        "SELECT active_users FROM analytics.engagement_monthly "
        f"WHERE customer_key = '{customer}' AND month = DATE '2024-03-01'",
    )
    return users[0]


def table(url: str, name: str, order: str) -> list[tuple]:
    return query(url, f"SELECT * FROM {name} ORDER BY {order}")


def assert_incremental_equals_full_refresh(url: str) -> None:
    build_company().write(url)
    build(url, AS_OF, marts_schema="analytics")
    before = table(url, "analytics.engagement_monthly", "customer_key, month")

    late_events(AS_OF + timedelta(days=1)).write(url)
    build(url, AS_OF, marts_schema="analytics", select=ENGAGEMENT)
    engagement = table(url, "analytics.engagement_monthly", "customer_key, month")
    assert engagement != before  # the late events changed something ...
    june_acc_01 = query(
        url,
        "SELECT active_users, active_days FROM analytics.engagement_monthly "
        "WHERE customer_key = 'acc_01' AND month = DATE '2024-06-01'",
    )
    assert june_acc_01 == [(3, 3)]  # ... u1, u2 and the late u9
    march_acc_07 = query(
        url,
        "SELECT active_users FROM analytics.engagement_monthly "
        "WHERE customer_key = 'acc_07' AND month = DATE '2024-03-01'",
    )
    assert march_acc_07 == [(3,)]  # u71, u72 three months late, and u5 by its group call
    march_acc_01 = march_users(url, "acc_01")

    # A late group call moves u5's earlier-loaded track call from ws_07 to ws_01.
    later_group_call(AS_OF + timedelta(days=2)).write(url)
    build(url, AS_OF, marts_schema="analytics", select=ENGAGEMENT)
    assert march_users(url, "acc_07") == 2 and march_users(url, "acc_01") == march_acc_01 + 1
    incremental = activity_tables(url)

    build(url, AS_OF, marts_schema="analytics", select=ENGAGEMENT, full_refresh=True)
    assert activity_tables(url) == incremental


# The incremental activity models and the mart built from them, each in a stable order.
ACTIVITY_TABLES = {
    "intermediate.int_activity_calls_assigned_to_workspaces": "message_id",
    "intermediate.int_activity_aggregated_to_daily_users": "1, 2, 3",
    "intermediate.int_activity_aggregated_to_workspace_months": "1, 2",
    "intermediate.int_activity_aggregated_to_half_months": "1, 2, 3, 4",
    "analytics.engagement_monthly": "customer_key, month",
}


def activity_tables(url: str) -> dict[str, list[tuple]]:
    return {name: table(url, name, order) for name, order in ACTIVITY_TABLES.items()}


def assert_first_events_after_the_first_build_are_taken(url: str) -> None:
    """A company whose product events start after its first build (analytics added later):
    the incremental models, empty until then, take every event of the next load."""
    company = build_company()
    events = company.rows.pop("events")
    company.write(url)
    build(url, AS_OF, marts_schema="analytics")
    assert query(
        url, "SELECT count(*) FROM intermediate.int_activity_aggregated_to_daily_users"
    ) == [(0,)]

    later = Company()
    later.rows["events"] = [{**row, "_loaded_at": AS_OF + timedelta(days=1)} for row in events]
    later.write(url)
    build(url, AS_OF, marts_schema="analytics", select=ENGAGEMENT)
    incremental = activity_tables(url)
    assert all(incremental.values())  # every table has rows

    build(url, AS_OF, marts_schema="analytics", select=ENGAGEMENT, full_refresh=True)
    assert activity_tables(url) == incremental


def test_an_incremental_run_equals_a_full_refresh(tmp_path: Path):
    assert_incremental_equals_full_refresh(str(tmp_path / "warehouse.duckdb"))


@pytest.mark.postgres
def test_an_incremental_run_equals_a_full_refresh_on_postgres(postgres_url):
    assert_incremental_equals_full_refresh(postgres_url)


def test_events_that_start_after_the_first_build_are_all_taken(tmp_path: Path):
    assert_first_events_after_the_first_build_are_taken(str(tmp_path / "warehouse.duckdb"))


@pytest.mark.postgres
def test_events_that_start_after_the_first_build_are_all_taken_on_postgres(postgres_url):
    assert_first_events_after_the_first_build_are_taken(postgres_url)


def persistence_by_schema(url: str) -> dict[str, set[str]]:
    """Per schema, the kinds of its tables: 'u' unlogged, 'p' permanent (pg_class)."""
    rows = query(
        url,
        "SELECT n.nspname, c.relpersistence FROM pg_class AS c "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname IN "
        "('raw', 'seeds', 'snapshots', 'intermediate', 'analytics')",
    )
    kinds: dict[str, set[str]] = {}
    for schema, kind in rows:
        kinds.setdefault(schema, set()).add(kind)
    return kinds


def mart_tables(url: str) -> dict[str, list[tuple]]:
    names = [
        name
        for (name,) in query(
            url,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'analytics' AND table_type = 'BASE TABLE'",
        )
    ]
    return {name: table(url, f"analytics.{name}", "1") for name in names}


@pytest.mark.postgres
def test_intermediate_tables_are_unlogged_and_a_crash_that_empties_them_costs_nothing(
    postgres_url,
):
    """On PostgreSQL the intermediate models skip the write-ahead log (they are rebuilt
    from raw), the raw, seed, snapshot and mart tables keep it. A crash empties unlogged
    tables; the next night's incremental build then takes every event again and
    publishes exactly what it published before."""
    url = postgres_url
    build_company().write(url)
    build(url, AS_OF, marts_schema="analytics")
    kinds = persistence_by_schema(url)
    assert kinds["intermediate"] == {"u"}
    assert all(kinds[schema] == {"p"} for schema in ("raw", "seeds", "analytics"))
    marts, activity = mart_tables(url), activity_tables(url)
    assert set(PUBLISHED_MARTS) <= set(marts) and all(activity.values())

    # What crash recovery does to every unlogged table: it comes back empty.
    intermediate = query(
        url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'intermediate' "
        "AND table_type = 'BASE TABLE'",
    )
    with open_warehouse(url).transaction() as tx:
        for (name,) in intermediate:
            tx.execute(f"TRUNCATE intermediate.{name}")
    build(url, AS_OF, marts_schema="analytics")
    assert mart_tables(url) == marts
    assert activity_tables(url) == activity


def test_a_missing_exchange_rate_stops_the_build_naming_currency_and_month(tmp_path: Path):
    url = str(tmp_path / "warehouse.duckdb")
    company = build_company()
    company.rows["fx_rates"] = [
        row
        for row in company.rows["fx_rates"]
        if (row["currency"], row["month"]) != ("cny", "2024-04")
    ]
    company.write(url)
    with pytest.raises(DbtBuildError) as failure:
        build(url, AS_OF, marts_schema="analytics", select="+int_invoice_lines_converted_to_usd")
    message = str(failure.value)
    assert "no FX rate for currency cny month 2024-04" in message
    assert "int_invoice_lines_converted_to_usd" in message
    assert [name for name, _ in failure.value.failures] == ["int_invoice_lines_converted_to_usd"]


def last_dbt_invocation_log(url: str) -> str:
    from churnhouse.transform import dbt_work_dir
    from churnhouse.warehouse import open_warehouse

    log = (dbt_work_dir(open_warehouse(url)) / "logs" / "dbt.log").read_text()
    return log[log.rindex("Running with dbt=") :]


def test_the_next_night_reuses_the_parse_and_builds_as_of_its_own_end(tmp_path: Path):
    """as_of changes every night; passed as a dbt var it made dbt parse the whole project
    again every night. It is read from the environment when models run instead."""
    url = str(tmp_path / "warehouse.duckdb")
    build_company().write(url)
    months = "SELECT max(month_start), count(*) FROM intermediate.int_reporting_months"
    build(url, AS_OF, marts_schema="analytics")
    first_months = query(url, months)
    assert "Unable to do partial parsing" in last_dbt_invocation_log(url)  # nothing saved yet

    build(url, AS_OF + timedelta(days=62), marts_schema="analytics")
    second = last_dbt_invocation_log(url)
    assert "Unable to do partial parsing" not in second
    assert "skipping partial parsing" in second  # "Nothing changed, skipping ..."
    later_months = query(url, months)
    assert later_months[0][1] == first_months[0][1] + 2, (first_months, later_months)


def test_a_night_makes_the_staging_views_again_only_when_they_changed_or_are_gone(
    built_duckdb, tmp_path, monkeypatch
):
    """The staging views are made by the first build and kept by the next while the project
    files are the same and the views are there (their tests run every time); a dropped view
    or an edited staging file makes them all again."""
    import json
    import shutil

    import duckdb

    from churnhouse.config import dbt_project_dir

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_duckdb, warehouse)
    shutil.copytree(f"{built_duckdb}.dbt", f"{warehouse}.dbt")

    def staging_nodes_built() -> tuple[bool, bool]:
        build(str(warehouse), AS_OF, marts_schema="analytics")
        results = json.loads(Path(f"{warehouse}.dbt/target/run_results.json").read_text())
        ids = [result["unique_id"] for result in results["results"]]
        views = any(node.startswith("model.churnhouse.stg_") for node in ids)
        tests = any(node.startswith("test.") and "_stg_" in node for node in ids)
        return views, tests

    assert staging_nodes_built() == (False, True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP VIEW staging.stg_crm__users")
    assert staging_nodes_built() == (True, True)
    assert staging_nodes_built() == (False, True)

    project = tmp_path / "dbt_project"
    shutil.copytree(dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs"))
    users = project / "models" / "staging" / "crm" / "stg_crm__users.sql"
    users.write_text(users.read_text() + "\n-- edited\n")
    monkeypatch.setenv("CHURN_DBT_PROJECT_DIR", str(project))
    assert staging_nodes_built() == (True, True)
