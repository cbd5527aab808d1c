"""PostgreSQL readers are confined, and cannot hold the night hostage.

`churnhouse query` runs as the read-only BI role the pipeline creates itself; a BI
session idle in a transaction on a published table delays publication by a bounded
time at most, and a reader never sees a half-swapped schema.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import psycopg2
import pytest

from churnhouse.cli import main
from churnhouse.publish import publish
from churnhouse.warehouse import open_warehouse
from churnhouse.warehouse.postgres import PublishBlocked

pytestmark = pytest.mark.postgres


def audit(warehouse, value: int) -> None:
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA IF NOT EXISTS raw")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS raw.crm_contacts AS "
            "SELECT 'li.wei@example.com' AS email, 'Li Wei' AS full_name"
        )
        tx.execute("CREATE SCHEMA analytics_audit")
        tx.execute(f"CREATE TABLE analytics_audit.churn_monthly AS SELECT {value} AS customers_end")


@pytest.fixture
def published(postgres_url):
    warehouse = open_warehouse(postgres_url)
    audit(warehouse, 1)
    publish(warehouse, "night-1", datetime(2024, 4, 1))
    return warehouse


def bi_connection(url: str):
    database = url.rsplit("/", 1)[1]
    return psycopg2.connect(host="127.0.0.1", user="churn_bi", dbname=database)


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        ("SELECT email, full_name FROM raw.crm_contacts", "permission denied for schema raw"),
        ("SELECT pg_read_file('/etc/passwd')", "permission denied for function pg_read_file"),
        ("SELECT rolpassword FROM pg_authid", "permission denied for table pg_authid"),
        ("SELECT pg_reload_conf()", "permission denied for function pg_reload_conf"),
        ("SELECT pg_sleep(5)", "canceling statement due to statement timeout"),
    ],
    ids=["raw-data", "server-files", "password-hashes", "reload-config", "runaway-query"],
)
def test_query_runs_as_the_confined_bi_role(published, capsys, monkeypatch, sql, refusal):
    monkeypatch.setenv("CHURN_QUERY_TIMEOUT", "1")
    code = main(["query", "--warehouse", published.url, sql])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("churnhouse query: ") and refusal in err
    assert "\n" not in err, "one line, no traceback"


def test_the_bi_role_has_no_temp_tables_and_reads_published_tables(published):
    with bi_connection(published.url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT customers_end FROM analytics.churn_monthly")
        assert cursor.fetchall() == [(1,)]
    connection.close()
    connection = bi_connection(published.url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        # Even with read-only switched off for its session, the role may not make tables.
        cursor.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg2.Error, match="permission denied to create temporary tables"):
            cursor.execute("CREATE TEMP TABLE mine (x int)")
    connection.close()


def test_grant_bi_is_a_command(postgres_url, capsys):
    assert main(["grant-bi", "--warehouse", postgres_url]) == 0
    assert "read-only BI role ready: churn_bi" in capsys.readouterr().out


def hold_an_idle_transaction(url: str, ready: threading.Event, done: threading.Event) -> None:
    connection = bi_connection(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT customers_end FROM analytics.churn_monthly")
            ready.set()
            done.wait(60)  # idle in transaction, holding its lock on the table
    except psycopg2.Error:
        pass  # publication ended this session
    finally:
        ready.set()
        try:
            connection.close()
        except psycopg2.Error:
            pass


@pytest.mark.parametrize("cancel_readers", [True, False], ids=["ends-the-reader", "gives-up"])
def test_an_idle_bi_reader_delays_publication_by_a_bounded_time(
    published, monkeypatch, cancel_readers
):
    monkeypatch.setenv("CHURN_PUBLISH_LOCK_TIMEOUT", "1")
    monkeypatch.setenv("CHURN_PUBLISH_CANCEL_READERS", "1" if cancel_readers else "0")
    ready, done = threading.Event(), threading.Event()
    reader = threading.Thread(target=hold_an_idle_transaction, args=(published.url, ready, done))
    reader.start()
    ready.wait(10)
    audit(published, 2)
    started = time.monotonic()
    try:
        if cancel_readers:
            publish(published, "night-2", datetime(2024, 4, 2))
        else:
            with pytest.raises(
                PublishBlocked, match=r"held by \d+ \(churn_bi, idle in transaction\)"
            ):
                publish(published, "night-2", datetime(2024, 4, 2))
    finally:
        done.set()
        reader.join(10)
    waited = time.monotonic() - started
    assert waited < 3 * 1 + 5, f"publication waited {waited:.1f}s"
    expected = 2 if cancel_readers else 1
    with published.transaction() as tx:
        assert tx.fetchall("SELECT customers_end FROM analytics.churn_monthly") == [(expected,)]
