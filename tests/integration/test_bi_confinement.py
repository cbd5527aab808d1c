"""The BI role cannot connect to the cluster's other databases once it is confined.

The writer here is a role that owns only the test's own databases: confinement closes
what the writer may change and names the rest, so the shared test cluster's other
databases are listed but never changed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import psycopg2
import pytest

from churnhouse.cli import main
from churnhouse.publish import publish
from churnhouse.warehouse import open_warehouse
from tests.servers import PG_HOST, PG_PORT

pytestmark = pytest.mark.postgres


@dataclass
class Cluster:
    warehouse: str  # the warehouse database, owned by the writer
    writer: str
    bi: str
    someone: str  # a login role that had CONNECT everywhere through PUBLIC
    group: str  # a NOLOGIN group role
    other: str  # another database the writer owns
    databases: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    @property
    def writer_url(self) -> str:
        return f"postgresql+psycopg2://{self.writer}@{PG_HOST}:{PG_PORT}/{self.warehouse}"

    def create_database(self, name: str) -> None:
        self.databases.append(name)
        admin(f"CREATE DATABASE {name} OWNER {self.writer}")

    def create_role(self, name: str, options: str) -> None:
        self.roles.append(name)
        admin(f"CREATE ROLE {name} {options}")


def admin(sql: str, params: list | None = None) -> list[tuple]:
    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


@pytest.fixture
def cluster(postgres_url, monkeypatch):
    suffix = uuid.uuid4().hex[:8]
    cluster = Cluster(
        warehouse=postgres_url.rsplit("/", 1)[1],
        writer=f"biconf_writer_{suffix}",
        bi=f"biconf_bi_{suffix}",
        someone=f"biconf_someone_{suffix}",
        group=f"biconf_group_{suffix}",
        other=f"biconf_other_{suffix}",
    )
    cluster.roles.append(cluster.bi)  # created by the pipeline itself
    monkeypatch.setenv("CHURN_BI_ROLE", cluster.bi)
    monkeypatch.delenv("CHURN_BI_CONFINE_CLUSTER", raising=False)
    try:
        cluster.create_role(cluster.writer, "LOGIN CREATEROLE")
        cluster.create_role(cluster.someone, "LOGIN")
        cluster.create_role(cluster.group, "NOLOGIN")
        admin(f"ALTER DATABASE {cluster.warehouse} OWNER TO {cluster.writer}")
        cluster.create_database(cluster.other)
        yield cluster
    finally:
        for database in [cluster.warehouse, *cluster.databases]:
            admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        for role in reversed(cluster.roles):
            if admin("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]):
                admin(f"DROP OWNED BY {role} CASCADE")
                admin(f"DROP ROLE {role}")


def connection_refusal(role: str, database: str) -> str | None:
    """None when `role` may connect to `database`, else the server's refusal."""
    try:
        psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user=role, dbname=database, connect_timeout=5
        ).close()
    except psycopg2.OperationalError as error:
        return str(error)
    return None


def confinement_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("BI role ")]
    assert len(lines) == 1, out
    return lines[0]


def test_publish_with_the_setting_closes_other_databases_to_the_bi_role_only(
    cluster, capsys, monkeypatch
):
    monkeypatch.setenv("CHURN_BI_CONFINE_CLUSTER", "1")
    warehouse = open_warehouse(cluster.writer_url)
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA analytics_audit")
        tx.execute("CREATE TABLE analytics_audit.churn_monthly AS SELECT 1 AS customers_end")
    publish(warehouse, "night-1", datetime(2024, 4, 1))

    line = confinement_line(capsys.readouterr().out)
    assert f"closed {cluster.other} (CONNECT revoked from PUBLIC" in line
    granted = line.split("granted by name to ", 1)[1].split(")", 1)[0].split(", ")
    assert {cluster.writer, cluster.someone, cluster.group, "postgres"} <= set(granted), line
    assert cluster.bi not in granted

    assert "permission denied for database" in connection_refusal(cluster.bi, cluster.other)
    bi = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=cluster.bi, dbname=cluster.warehouse)
    with bi.cursor() as cursor:
        cursor.execute("SELECT customers_end FROM analytics.churn_monthly")
        assert cursor.fetchall() == [(1,)]
    bi.close()
    assert connection_refusal(cluster.someone, cluster.other) is None
    # A role that joins a group after the step connects as it would have through PUBLIC.
    late = cluster.group.replace("group", "late")
    cluster.create_role(late, f"LOGIN IN ROLE {cluster.group}")
    assert connection_refusal(late, cluster.other) is None


def test_a_database_created_later_needs_the_step_again_which_is_idempotent(cluster, capsys):
    warehouse = open_warehouse(cluster.writer_url)
    warehouse.ensure_reader_role(confine_cluster=True)
    later = cluster.other.replace("other", "later")
    cluster.create_database(later)
    assert connection_refusal(cluster.bi, later) is None, "a new database is open to PUBLIC"
    capsys.readouterr()

    warehouse.ensure_reader_role(confine_cluster=True)

    line = confinement_line(capsys.readouterr().out)
    assert f"closed {later} (" in line
    assert cluster.other in line.split("already closed: ", 1)[1].split(";", 1)[0].split(", ")
    for database in (cluster.other, later):
        assert "permission denied for database" in connection_refusal(cluster.bi, database)
        assert connection_refusal(cluster.someone, database) is None

    warehouse.ensure_reader_role(confine_cluster=True)
    assert "closed no database; already closed: " in confinement_line(capsys.readouterr().out)
    assert connection_refusal(cluster.someone, later) is None


def connectable_databases() -> set[str]:
    return {name for (name,) in admin("SELECT datname FROM pg_database WHERE datallowconn")}


def test_grant_bi_confine_cluster_closes_what_it_may_and_names_every_other_database(
    cluster, capsys
):
    before = connectable_databases()

    assert main(["grant-bi", "--warehouse", cluster.writer_url, "--confine-cluster"]) == 0

    out, err = capsys.readouterr()
    assert f"read-only BI role ready: {cluster.bi}" in out
    assert err == ""
    line = confinement_line(out)
    assert f"closed {cluster.other} (" in line
    reachable = line.split("still reachable: ", 1)[1]
    # Every other connectable database was considered: those the writer may not change
    # are named, with the reason, and left as they were.
    unchanged = (before & connectable_databases()) - {cluster.warehouse, cluster.other}
    still_open = {
        name
        for name in unchanged
        if admin("SELECT has_database_privilege(%s, %s, 'CONNECT')", [cluster.bi, name])[0][0]
    }
    assert "postgres" in still_open
    for name in still_open:
        assert f"{name} (PUBLIC holds CONNECT; {cluster.writer} is neither superuser nor" in (
            reachable
        )
    assert f"{cluster.other} (" not in reachable
    assert "permission denied for database" in connection_refusal(cluster.bi, cluster.other)
    assert connection_refusal(cluster.bi, "postgres") is None


def test_grant_bi_without_the_flag_warns_naming_the_other_databases(cluster, capsys):
    assert main(["grant-bi", "--warehouse", cluster.writer_url]) == 0

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"churnhouse grant-bi: warning: {cluster.bi} can still connect to")
    named = err.split("other databases ", 1)[1].split(";", 1)[0].split(", ")
    assert {cluster.other, "postgres"} <= set(named)
    assert cluster.warehouse not in named
    assert f"would close {cluster.other}, pg_hba.conf can refuse it the rest" in err
    assert connection_refusal(cluster.bi, cluster.other) is None


def test_a_superuser_writer_would_close_every_other_database(postgres_url, capsys, monkeypatch):
    """Read-only on the shared cluster: without the flag nothing changes."""
    bi = f"biconf_bi_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CHURN_BI_ROLE", bi)
    try:
        assert main(["grant-bi", "--warehouse", postgres_url]) == 0
        err = capsys.readouterr().err
        named = err.split("other databases ", 1)[1].split(";", 1)[0]
        closable = err.split("would close ", 1)[1].split(", pg_hba.conf", 1)[0]
        assert "postgres" in named.split(", ")
        assert closable == named
    finally:
        admin(f"DROP DATABASE IF EXISTS {postgres_url.rsplit('/', 1)[1]} WITH (FORCE)")
        admin(f"DROP ROLE IF EXISTS {bi}")
