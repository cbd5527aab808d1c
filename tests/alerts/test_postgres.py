"""The same alerts on a PostgreSQL warehouse: published schema read, ledger in raw."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from alert_receivers import SIMULATION, last_competitor_churn

from churnhouse.alerts.config import load_config
from churnhouse.alerts.night import send_alerts
from churnhouse.warehouse import open_warehouse

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONFIG = """\
lookback_days: 60
teams:
  - name: sales
    channels:
      - type: webhook
        connection: alerts_sales
      - type: email
        connection: alerts_smtp
        to: [sales@example.com]
routes:
  - reason_category: [competitor, price]
    team: sales
"""


def test_postgres_sends_each_item_once_and_keeps_a_failed_channels_items(
    postgres_url, tmp_path_factory, tmp_path, hooks, mailbox, monkeypatch
):
    from churnhouse.config import sources_for_bundle
    from churnhouse.devkit.simulator import simulate
    from churnhouse.ingest import ingest_bundle_once
    from churnhouse.publish import publish
    from churnhouse.transform import build

    bundle = tmp_path_factory.mktemp("pg_company") / "bundle"
    simulate(out=bundle, workers=1, **SIMULATION)
    churned = last_competitor_churn(bundle)
    as_of = datetime(churned.year, churned.month, churned.day) + timedelta(days=2)
    warehouse = open_warehouse(postgres_url)
    ingest_bundle_once(sources_for_bundle(bundle), warehouse, as_of)
    build(postgres_url, as_of)
    publish(warehouse, "pg_night", as_of)

    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SALES", hooks.url("/sales"))
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", mailbox.uri)
    path = tmp_path / "alerts.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path)

    mailbox.stop()
    first = {d.channel.type: d for d in send_alerts(config, warehouse)}
    assert first["webhook"].error is None and first["email"].error is not None
    with warehouse.transaction() as tx:
        expected = tx.fetchone(
            "SELECT (SELECT count(*) FROM analytics.churn_events WHERE churned_at >= %s "
            "AND reason_category IN ('competitor', 'price')) + (SELECT count(*) FROM "
            "analytics.cancel_saves WHERE submitted_at >= %s AND customer_key IS NOT NULL "
            "AND reason_category IN ('competitor', 'price'))".replace("%s", "?"),
            [as_of - timedelta(days=60)] * 2,
        )[0]
    [digest] = hooks.bodies("/sales")
    assert len(digest["items"]) == expected > 0
    assert "schema analytics of postgresql://127.0.0.1:5432/" in digest["published_rows"]

    mailbox.start()
    second = send_alerts(config, warehouse)
    assert [(d.channel.type, d.error, len(d.digest.items)) for d in second] == [
        ("email", None, expected)
    ]
    assert send_alerts(config, warehouse) == []
    assert len(hooks.bodies("/sales")) == 1 and len(mailbox.messages) == 1
