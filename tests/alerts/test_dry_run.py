"""`churnhouse alerts --dry-run` and the example routing file: what would be sent,
with nothing sent and nothing recorded; `churnhouse run` refuses a bad file."""

from __future__ import annotations

import os
from datetime import timedelta

import duckdb
import yaml
from alert_receivers import published_file

from churnhouse.alerts.config import load_config
from churnhouse.cli import main
from churnhouse.devkit.demo import example_alerts, print_alerts_dry_run
from churnhouse.warehouse import open_warehouse


def example_connections(monkeypatch, hooks) -> None:
    document = yaml.safe_load(example_alerts().read_text(encoding="utf-8"))
    for team in document["teams"]:
        for channel in team["channels"]:
            name = channel["connection"]
            monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", hooks.url(f"/{name}"))


def ledger_tables(url: str) -> list[str]:
    with open_warehouse(url).transaction() as tx:
        rows = tx.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_alerts%'"
        )
    return [name for (name,) in rows]


def test_the_example_file_is_accepted_as_shipped(monkeypatch, hooks):
    example_connections(monkeypatch, hooks)
    config = load_config(example_alerts())
    assert set(config.teams) == {
        "sales",
        "pricing",
        "product",
        "support",
        "customer_success",
        "data",
    }
    assert len(config.routes) == 6 and config.pipeline_team == "data"
    assert config.lookback_days == 7 and config.freshness_hours == 36


def test_the_dry_run_prints_tonights_digests_and_sends_nothing(
    company, hooks, monkeypatch, capsys, tmp_path
):
    example_connections(monkeypatch, hooks)
    assert (
        main(["alerts", "--dry-run", "--config", str(example_alerts()), "--warehouse", company])
        == 0
    )
    printed = capsys.readouterr().out
    with duckdb.connect(str(published_file(company)), read_only=True) as con:
        as_of = con.execute("SELECT as_of FROM analytics._publication").fetchone()[0]
        competitors = con.execute(
            "SELECT customer_key FROM analytics.churn_events "
            "WHERE reason_category = 'competitor' AND churned_at >= ?",
            [as_of - timedelta(days=7)],
        ).fetchall()
    assert competitors
    assert "would send to sales:webhook:alerts_sales via alerts_sales (127.0.0.1):" in printed
    for (key,) in competitors:
        assert f"[{key}]" in printed
    assert "freshness (threshold 36 h) -> would send '[churnhouse] STALE" in printed
    assert hooks.received == [], "a dry run sends nothing"
    assert ledger_tables(company) == [], "and records nothing"


def test_the_demo_shows_a_dry_run_of_the_example(company, monkeypatch, capsys, hooks):
    example_connections(monkeypatch, hooks)  # recorded, so the demo's placeholders are undone
    for variable in [v for v in os.environ if v.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(variable)
    print_alerts_dry_run(company)
    printed = capsys.readouterr().out
    assert "alerts (dry run of alerts.example.yaml, look-back 31 days):" in printed
    assert (
        "would send to sales:webhook:alerts_sales via alerts_sales (hooks.example.com):" in printed
    )
    assert "[churnhouse] sales: " in printed


def test_churnhouse_run_refuses_a_bad_routing_file_before_the_night(tmp_path, monkeypatch, capsys):
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "teams:\n  - name: sales\n    channels:\n      - type: pager\n        connection: x\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CHURN_ALERTS_CONFIG", str(path))
    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    assert main(["run", "--date", "2024-09-30", "--bundle", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"{path}:4: unknown channel type 'pager' (known: slack, email, webhook)" in error
    assert not (tmp_path / "home" / "logs").exists(), "Airflow never started"


def test_after_a_real_send_the_dry_run_shows_nothing_new(company, hooks, monkeypatch, capsys):
    from churnhouse.alerts.night import dry_run, send_alerts

    example_connections(monkeypatch, hooks)
    config = load_config(example_alerts())
    sent = send_alerts(config, open_warehouse(company))
    keys = [d.channel.key for d in sent]
    # Competitor churns to sales; the company's high-risk customers (customer_health) to CS.
    assert keys[0] == "sales:webhook:alerts_sales"
    assert set(keys[1:]) <= {"customer_success:email:alerts_smtp:csm-team@example.com"}
    printed = dry_run(config, open_warehouse(company))
    delivered = [d.channel.key for d in sent if d.error is None]
    failed = [d.channel.key for d in sent if d.error is not None]
    assert "nothing new for: sales:webhook:alerts_sales" in printed
    # Only a channel that failed tonight (no SMTP server here) still has items waiting.
    waiting = [line for line in printed.splitlines() if line.startswith("would send to ")]
    assert all(any(key in line for key in failed) for line in waiting)
    assert not any(key in line for line in waiting for key in delivered)
