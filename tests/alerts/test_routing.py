"""Alerts from a published night to real receivers: each team gets exactly its reasons,
once, and a channel that was down gets everything the next night."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from alert_receivers import published_file

from churnhouse.alerts.config import load_config
from churnhouse.alerts.night import send_alerts
from churnhouse.alerts.pipeline import check_freshness
from churnhouse.warehouse import open_warehouse

MINIMAL = """\
teams:
  - name: sales
    channels:
      - type: webhook          # or slack, email
        connection: alerts_sales
routes:
  - reason_category: competitor
    team: sales
"""

ROUTES = """\
lookback_days: {lookback}
teams:
  - name: sales
    channels:
      - type: webhook
        connection: alerts_sales
  - name: product
    channels:
      - type: slack
        connection: alerts_product
  - name: support
    channels:
      - type: email
        connection: alerts_smtp
        to: [support-lead@example.com]
  - name: data
    channels:
      - type: webhook
        connection: alerts_data
routes:
  - reason_category: [competitor, price]
    team: sales
  - reason_category: [product_fit, product_quality, unused]
    team: product
  - reason_category: [service, payment_failed, unknown]
    team: support
    include_contacts: {contacts}
pipeline:
  team: data
  freshness_hours: 36
"""

TEAM_CATEGORIES = {
    "sales": {"competitor", "price"},
    "product": {"product_fit", "product_quality", "unused"},
    "support": {"service", "payment_failed", "unknown"},
}


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def connections(hooks, mailbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SALES", hooks.url("/sales"))
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_PRODUCT", hooks.url("/product"))
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_DATA", hooks.url("/data"))
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", mailbox.uri)


def published(url: str, sql: str) -> list[tuple]:
    path = published_file(url)
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def as_of(url: str) -> datetime:
    return published(url, "SELECT as_of FROM analytics._publication")[0][0]


def expected_items(url: str, categories: set[str], since: datetime) -> dict[str, dict]:
    """Churns, requests and saves of these categories since `since`, read straight from
    the published tables (item id -> the fields a team must see)."""
    listed = ", ".join(f"'{c}'" for c in sorted(categories))
    churns = published(
        url,
        f"""SELECT e.customer_key, e.churned_at, d.account_name, d.segment, e.mrr_lost,
                   e.reason_category, e.archetype, e.is_influenceable
            FROM analytics.churn_events e JOIN analytics.dim_customers d USING (customer_key)
            WHERE e.reason_category IN ({listed}) AND e.churned_at >= '{since}'""",
    )
    flows = published(
        url,
        f"""SELECT s.response_id, s.is_save, s.customer_key, d.account_name, s.reason_category
            FROM analytics.cancel_saves s JOIN analytics.dim_customers d USING (customer_key)
            WHERE s.reason_category IN ({listed}) AND s.submitted_at >= '{since}'""",
    )
    expected = {
        f"churn:{key}:{at.isoformat()}": {
            "customer_key": key,
            "account_name": name,
            "segment": segment,
            "mrr": float(mrr),
            "reason_category": category,
            "archetype": archetype,
            "is_influenceable": influenceable,
        }
        for key, at, name, segment, mrr, category, archetype, influenceable in churns
    }
    for response, is_save, key, name, category in flows:
        kind = "save" if is_save else "cancel_request"
        expected[f"{kind}:{response}"] = {
            "customer_key": key,
            "account_name": name,
            "reason_category": category,
        }
    return expected


def personal_data(url: str) -> set[str]:
    """Every contact's and staff member's name and e-mail in the raw CRM."""
    with open_warehouse(url).transaction() as tx:
        rows = tx.fetchall(
            "SELECT full_name, trim(email) FROM raw.crm_contacts "
            "UNION SELECT full_name, email FROM raw.crm_users"
        )
    return {value for row in rows for value in row if value and len(value) > 3}


def test_the_minimal_form_posts_tonights_competitor_churns_to_sales(
    company, hooks, tmp_path, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SALES", f"http://127.0.0.1:{hooks.port}/hook")
    config = load_config(write_config(tmp_path, MINIMAL))
    send_alerts(config, open_warehouse(company))
    week = as_of(company) - timedelta(days=7)
    expected = expected_items(company, {"competitor"}, week)
    assert any(key.startswith("churn:") for key in expected), "tonight's week holds a churn"
    [digest] = hooks.bodies("/hook")
    assert digest["team"] == "sales"
    got = {item["item_id"]: item for item in digest["items"]}
    assert set(got) == set(expected)
    for item_id, fields in expected.items():
        assert {k: got[item_id][k] for k in fields} == fields
    assert all(item["account_name"] for item in digest["items"])
    assert str(published_file(company)) in digest["published_rows"]


def test_each_team_gets_exactly_its_categories_with_the_fields_and_no_personal_data(
    company, hooks, mailbox, connections, tmp_path
):
    config = load_config(write_config(tmp_path, ROUTES.format(lookback=90, contacts="false")))
    deliveries = send_alerts(config, open_warehouse(company))
    assert [d.error for d in deliveries] == [None] * len(deliveries)
    since = as_of(company) - timedelta(days=90)

    [sales] = hooks.bodies("/sales")
    expected = expected_items(company, TEAM_CATEGORIES["sales"], since)
    assert {item["item_id"] for item in sales["items"]} == set(expected)
    for item in sales["items"]:
        assert {k: item[k] for k in expected[item["item_id"]]} == expected[item["item_id"]]

    [product] = hooks.bodies("/product")  # Slack format: text and blocks
    expected = expected_items(company, TEAM_CATEGORIES["product"], since)
    sections = [b["text"]["text"] for b in product["blocks"] if b["type"] == "section"]
    assert len(sections) == len(expected) > 0
    for fields in expected.values():
        assert any(fields["customer_key"] in s and fields["account_name"] in s for s in sections)

    [(recipients, mail)] = mailbox.messages
    assert recipients == ["support-lead@example.com"]
    expected = expected_items(company, TEAM_CATEGORIES["support"], since)
    body = mail.get_content()
    assert mail["Subject"].startswith("[churnhouse] support: ")
    assert sum(line.startswith("- ") for line in body.splitlines()) == len(expected) > 0
    for fields in expected.values():
        assert f"[{fields['customer_key']}]" in body

    everything = repr(hooks.received) + body
    leaked = {value for value in personal_data(company) if value in everything}
    assert leaked == set(), "no contact e-mail or person's name without include_contacts"


def test_a_route_with_include_contacts_names_the_primary_contact(
    company, hooks, mailbox, connections, tmp_path
):
    config = load_config(write_config(tmp_path, ROUTES.format(lookback=90, contacts="true")))
    send_alerts(config, open_warehouse(company))
    [(_, mail)] = mailbox.messages
    body = mail.get_content()
    with open_warehouse(company).transaction() as tx:
        contacts = tx.fetchall(
            "SELECT account_id, full_name FROM raw.crm_contacts WHERE is_primary"
        )
    named = [name for account, name in contacts if f"[{account}]" in body and name in body]
    assert named, "the support digest names the customers' primary contacts"
    assert not [v for v in personal_data(company) if v in repr(hooks.received)]


def test_a_second_run_of_the_night_delivers_nothing_new(
    company, hooks, mailbox, connections, tmp_path
):
    config = load_config(write_config(tmp_path, ROUTES.format(lookback=90, contacts="false")))
    first = send_alerts(config, open_warehouse(company))
    received, mails = len(hooks.received), len(mailbox.messages)
    assert len(first) == 3 and received == 2 and mails == 1
    assert send_alerts(config, open_warehouse(company)) == []
    assert (len(hooks.received), len(mailbox.messages)) == (received, mails)
    with open_warehouse(company).transaction() as tx:
        ledger = tx.fetchone("SELECT count(*), count(DISTINCT item_id) FROM raw._alerts_sent")
    assert ledger[0] == sum(len(d.digest.items) for d in first)


def test_channels_down_for_a_night_deliver_everything_the_next_night(
    company, hooks, mailbox, connections, tmp_path
):
    config = load_config(write_config(tmp_path, ROUTES.format(lookback=90, contacts="false")))
    hooks.down.add("/sales")  # HTTP 503
    mailbox.stop()  # SMTP refused
    night_one = {d.channel.team: d for d in send_alerts(config, open_warehouse(company))}
    assert night_one["sales"].error == "alerts_sales (127.0.0.1): HTTP 503"
    assert "SMTP" in night_one["support"].error and night_one["product"].error is None
    assert hooks.bodies("/sales") == [] and mailbox.messages == []
    [told] = hooks.bodies("/data")
    assert told["event"] == "channels_failed"
    assert {(c["channel"], c["items"]) for c in told["channels"]} == {
        (night_one[team].channel.key, len(night_one[team].digest.items))
        for team in ("sales", "support")
    }

    hooks.down.clear()
    mailbox.start()
    night_two = {d.channel.team: d for d in send_alerts(config, open_warehouse(company))}
    assert set(night_two) == {"sales", "support"}, "product got its digest on night one"
    [sales] = hooks.bodies("/sales")
    assert {i["item_id"] for i in sales["items"]} == {
        i.item_id for i in night_one["sales"].digest.items
    }
    assert len(mailbox.messages) == 1
    assert len(hooks.bodies("/product")) == 1, "nothing twice"
    assert len(hooks.bodies("/data")) == 1, "all delivered: the data team is not told again"
    with open_warehouse(company).transaction() as tx:
        failures = tx.fetchone("SELECT count(*) FROM raw._alerts_deliveries WHERE NOT ok")[0]
    assert failures == 2


def test_the_first_night_sends_nothing_older_than_the_look_back(
    company, hooks, mailbox, connections, tmp_path
):
    config = load_config(write_config(tmp_path, ROUTES.format(lookback=7, contacts="false")))
    send_alerts(config, open_warehouse(company))
    week = as_of(company) - timedelta(days=7)
    sent = [item for _, body in hooks.received for item in body["items"]]
    assert sent and all(datetime.fromisoformat(item["at"]) >= week for item in sent)
    older = expected_items(company, TEAM_CATEGORIES["sales"], week - timedelta(days=60))
    assert len(older) > len(hooks.bodies("/sales")[0]["items"]), "older items exist, unsent"


def test_a_stale_publication_sends_the_freshness_alert(
    company, hooks, mailbox, connections, tmp_path
):
    config = load_config(write_config(tmp_path, ROUTES.format(lookback=7, contacts="false")))
    published_as_of = as_of(company)
    assert not check_freshness(
        config, open_warehouse(company), now=published_as_of + timedelta(hours=30)
    )
    assert hooks.bodies("/data") == []
    assert check_freshness(
        config, open_warehouse(company), now=published_as_of + timedelta(hours=50)
    )
    [alert] = hooks.bodies("/data")
    assert alert["event"] == "stale_publication" and alert["age_hours"] == 50.0
    assert alert["as_of"] == published_as_of.isoformat() and alert["threshold_hours"] == 36


def test_a_config_naming_an_unknown_category_team_key_or_connection_is_refused_by_line(
    tmp_path, monkeypatch
):
    from churnhouse.alerts.config import AlertsConfigError

    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SALES", "http://127.0.0.1:9/hook")
    monkeypatch.delenv("AIRFLOW_CONN_ALERTS_NOWHERE", raising=False)
    path = write_config(
        tmp_path,
        textwrap.dedent(
            """\
            teams:
              - name: sales
                channels:
                  - type: webhook
                    connection: alerts_sales
                  - type: slack
                    connection: alerts_nowhere
            routes:
              - reason_category: pricing
                team: sales
              - reason_category: competitor
                team: marketing
              - reason_categroy: price
                team: sales
            """
        ),
    )
    with pytest.raises(AlertsConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert f"{path}:9: unknown reason category 'pricing'" in message
    assert f"{path}:12: unknown team 'marketing' (teams: sales)" in message
    assert f"{path}:13: unknown key 'reason_categroy' in a route" in message
    assert f"{path}:6: unknown connection 'alerts_nowhere'" in message
