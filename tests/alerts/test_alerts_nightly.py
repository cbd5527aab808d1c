"""Alerts through a real Airflow night (`airflow dags test`): digests arrive after
publish; a night stopped at its gate tells the data team and sends no churn alerts."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import duckdb
import pytest
from alert_receivers import published_file
from factories import write_mini_bundle

from churnhouse.runner import run_day
from churnhouse.warehouse import open_warehouse

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

LAST_DAY = date(2024, 9, 30)  # the mini bundle's last day

CONFIG = """\
lookback_days: 10000
teams:
  - name: everyone
    channels:
      - type: webhook
        connection: alerts_everyone
  - name: data
    channels:
      - type: webhook
        connection: alerts_data
routes:
  - reason_category: "*"
    team: everyone
pipeline:
  team: data
  freshness_hours: {hours}
"""


def night(day: date, folder: Path, bundle: Path, config: Path, hooks, airflow_home: Path) -> int:
    env = {
        "CHURN_BUNDLE": str(bundle),
        "CHURN_WAREHOUSE": str(folder / "warehouse.duckdb"),
        "CHURN_HOME": str(folder / "home"),
        "CHURN_AIRFLOW_HOME": str(airflow_home),
        "CHURN_ALERTS_CONFIG": str(config),
        "AIRFLOW_CONN_ALERTS_EVERYONE": hooks.url("/everyone"),
        "AIRFLOW_CONN_ALERTS_DATA": hooks.url("/data"),
    }
    return run_day(day, env)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_mini_bundle(tmp_path_factory.mktemp("mini_bundle"))


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("airflow")


def test_churnhouse_run_sends_the_nights_alerts_after_publish(
    tmp_path, bundle, hooks, airflow_home, monkeypatch
):
    from churnhouse.cli import main

    config = tmp_path / "alerts.yaml"
    config.write_text(CONFIG.format(hours=10**6), encoding="utf-8")
    token_path = "/everyone/T0K3N-s3cret-path"  # a Slack-like webhook token in the URL
    for name, value in {
        "CHURN_HOME": str(tmp_path / "home"),
        "CHURN_AIRFLOW_HOME": str(airflow_home),
        "CHURN_ALERTS_CONFIG": str(config),
        "AIRFLOW_CONN_ALERTS_EVERYONE": hooks.url(token_path),
        "AIRFLOW_CONN_ALERTS_DATA": hooks.url("/data"),
    }.items():
        monkeypatch.setenv(name, value)
    warehouse_path = str(tmp_path / "warehouse.duckdb")
    arguments = ["run", "--date", LAST_DAY.isoformat(), "--bundle", str(bundle)]
    assert main([*arguments, "--warehouse", warehouse_path]) == 0
    warehouse = open_warehouse(str(tmp_path / "warehouse.duckdb"))
    with duckdb.connect(str(published_file(warehouse.url)), read_only=True) as con:
        published_at = con.execute("SELECT published_at FROM analytics._publication").fetchone()[0]
        churns = con.execute("SELECT count(*) FROM analytics.churn_events").fetchone()[0]
        flows = con.execute(
            "SELECT count(*) FROM analytics.cancel_saves WHERE customer_key IS NOT NULL"
        ).fetchone()[0]
    assert churns + flows > 0
    [digest] = hooks.bodies(token_path)
    assert len(digest["items"]) == churns + flows
    assert hooks.bodies("/data") == [], (
        "a fresh enough, successful night tells the data team nothing"
    )
    with warehouse.transaction() as tx:
        first_sent = tx.fetchone("SELECT min(sent_at) FROM raw._alerts_sent")[0]
    assert first_sent > published_at, "alerts go out after the publication"
    logs = [*(tmp_path / "home").rglob("*.log"), *airflow_home.rglob("*.log")]
    assert "alerts: everyone:webhook:alerts_everyone: " in "".join(p.read_text() for p in logs)
    assert not [p for p in logs if "T0K3N" in p.read_text(errors="replace")], "no secret logged"


def break_region(bundle: Path) -> None:
    with sqlite3.connect(bundle / "crm.sqlite") as crm:
        crm.execute("UPDATE accounts SET region = 'mars', updated_at = '2024-09-30 12:00:00'")


def test_a_failed_gate_tells_the_data_team_and_sends_no_churn_alerts(
    tmp_path, bundle, hooks, airflow_home
):
    import shutil

    broken = tmp_path / "broken_bundle"
    shutil.copytree(bundle, broken)
    break_region(broken)
    config = tmp_path / "alerts.yaml"
    config.write_text(CONFIG.format(hours=36), encoding="utf-8")
    assert night(LAST_DAY, tmp_path, broken, config, hooks, airflow_home) != 0
    assert hooks.bodies("/everyone") == []
    alerts = {body["event"]: body for body in hooks.bodies("/data")}
    assert set(alerts) == {"night_failed", "stale_publication"}
    failed = alerts["night_failed"]
    assert failed["task_id"] == "validate_raw"
    assert "expect_column_values_to_be_in_set on region" in failed["error"]
    assert alerts["stale_publication"]["as_of"] is None, "nothing was ever published here"
