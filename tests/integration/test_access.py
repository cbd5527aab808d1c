"""The BI role reads the published schema and nothing else; hostile names are refused."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg2
import pytest

from churnhouse.publish import publish
from churnhouse.warehouse import UnsafeIdentifierError, open_warehouse

pytestmark = pytest.mark.postgres


@pytest.fixture
def role(monkeypatch, postgres_url):
    name = f"churn_bi_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CHURN_BI_ROLE", name)
    yield name
    # Roles are cluster-wide: revoke what it holds in the test database, then drop it.
    for database in (postgres_url.rsplit("/", 1)[1], "postgres"):
        admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
            if cursor.fetchone():
                cursor.execute(f"DROP OWNED BY {name} CASCADE")
                if database == "postgres":
                    cursor.execute(f"DROP ROLE {name}")
        admin.close()


@pytest.fixture
def published(postgres_url, role):
    warehouse = open_warehouse(postgres_url)
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA raw")
        tx.execute("CREATE TABLE raw.crm_contacts AS SELECT 'li.wei@example.com' AS email")
        tx.execute("CREATE SCHEMA analytics_audit")
        tx.execute("CREATE TABLE analytics_audit.churn_monthly AS SELECT 1 AS customers_end")
    warehouse.ensure_reader_role()
    publish(warehouse, "night-1", datetime(2024, 4, 1))
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA analytics_audit")
        tx.execute("CREATE TABLE analytics_audit.churn_monthly AS SELECT 2 AS customers_end")
    return postgres_url


def as_role(url: str, role: str):
    database = url.rsplit("/", 1)[1]
    connection = psycopg2.connect(host="127.0.0.1", user=role, dbname=database)
    connection.autocommit = True
    return connection


def test_the_bi_role_reads_the_published_tables(published, role):
    with as_role(published, role) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT customers_end FROM analytics.churn_monthly")
        assert cursor.fetchall() == [(1,)]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM raw.crm_contacts",
        "SELECT * FROM analytics_audit.churn_monthly",
        "INSERT INTO analytics.churn_monthly VALUES (5)",
        "DELETE FROM analytics.churn_monthly",
        "CREATE TABLE analytics.mine (x int)",
        "CREATE TABLE public.mine (x int)",
        "DROP TABLE analytics.churn_monthly",
    ],
    ids=["raw", "audit", "insert", "delete", "create-in-published", "create-in-public", "drop"],
)
def test_the_bi_role_cannot_read_raw_or_audit_nor_write(published, role, statement):
    with as_role(published, role) as connection, connection.cursor() as cursor:
        with pytest.raises(
            psycopg2.Error, match="permission denied|must be owner|read-only transaction"
        ):
            cursor.execute(statement)


def test_a_hostile_role_name_is_refused_and_nothing_changes(published, monkeypatch, role):
    monkeypatch.setenv("CHURN_BI_ROLE", "churn_bi; DROP SCHEMA raw CASCADE")
    warehouse = open_warehouse(published)
    with pytest.raises(UnsafeIdentifierError, match="refusing identifier"):
        publish(warehouse, "night-2", datetime(2024, 4, 2))
    with warehouse.transaction() as tx:
        assert tx.fetchall("SELECT customers_end FROM analytics.churn_monthly") == [(1,)]
        assert tx.fetchall("SELECT email FROM raw.crm_contacts") == [("li.wei@example.com",)]
