"""Customers entering `high` risk, once `customer_health` is published: one item per
entry into high, to the team of the `risk_level: high` route, never twice."""

from __future__ import annotations

from datetime import timedelta

import duckdb
from alert_receivers import published_file

from churnhouse.alerts.config import load_config
from churnhouse.alerts.night import send_alerts
from churnhouse.warehouse import open_warehouse

CONFIG = """\
lookback_days: 7
teams:
  - name: csm
    channels:
      - type: webhook
        connection: alerts_csm
routes:
  - risk_level: high
    team: csm
"""


def publish_health(url: str, high: list[str], days_later: int) -> None:
    """Tonight's published customer_health with exactly `high` at high risk, as_of moved on."""
    with duckdb.connect(str(published_file(url))) as con:
        if days_later == 0:
            con.execute("UPDATE analytics._publication SET run_id = 'night_0'")
        else:
            con.execute(
                "UPDATE analytics._publication SET as_of = as_of + ?, run_id = ?",
                [timedelta(days=1), f"night_{days_later}"],
            )
        con.execute("UPDATE analytics.customer_health SET risk_level = 'low', risk_reasons = ''")
        con.execute(
            "UPDATE analytics.customer_health SET risk_level = 'high', "
            "risk_reasons = 'no login in 30 days; seats used 2/10' WHERE list_contains(?, customer_key)",
            [high],
        )


def active_customers(url: str, count: int) -> list[str]:
    with duckdb.connect(str(published_file(url)), read_only=True) as con:
        rows = con.execute(
            "SELECT customer_key FROM analytics.dim_customers WHERE status = 'active' "
            "ORDER BY current_mrr DESC LIMIT ?",
            [count],
        ).fetchall()
    return [key for (key,) in rows]


def sent_customers(hooks) -> list[list[str]]:
    return [sorted(item["customer_key"] for item in body["items"]) for body in hooks.bodies("/csm")]


def test_customers_entering_high_risk_are_sent_once_per_entry(
    company, hooks, tmp_path, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_CSM", hooks.url("/csm"))
    path = tmp_path / "alerts.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path)
    a, b, c = active_customers(company, 3)
    warehouse = open_warehouse(company)

    publish_health(company, [], days_later=0)
    assert send_alerts(config, warehouse) == [], "nobody at high risk: nothing"
    publish_health(company, [a, b], days_later=0)
    send_alerts(config, warehouse)
    send_alerts(config, warehouse)  # a rerun of the night
    publish_health(company, [b, c], days_later=1)  # a leaves high, c enters
    send_alerts(config, warehouse)
    publish_health(company, [a, b, c], days_later=2)  # a enters again
    send_alerts(config, warehouse)
    assert sent_customers(hooks) == [sorted([a, b]), [c], [a]]
    [first, *_] = hooks.bodies("/csm")
    item = first["items"][0]
    assert item["event"] == "at_risk" and item["account_name"]
    assert item["risk_reasons"] == "no login in 30 days; seats used 2/10"
