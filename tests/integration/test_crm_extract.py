"""CRM extraction over SQLAlchemy against real SQLite, PostgreSQL and MariaDB databases."""

from datetime import datetime

import pytest
import sqlalchemy as sa
from factories import crm_schema

from churnhouse.config import SourceSettings
from churnhouse.contracts import ExtractWindow, RunWindow
from churnhouse.errors import ContractError
from churnhouse.ingest import ingest
from churnhouse.sources.crm import extract
from churnhouse.warehouse import open_warehouse

RUN = RunWindow("night", datetime(2024, 9, 2), datetime(2024, 9, 3))


def account(account_id: str, updated: datetime, deleted: bool = False, **extra) -> dict:
    return {
        "account_id": account_id,
        "name": f"Company {account_id}",
        "domain": "Example.COM",
        "industry": None,
        "employee_count": 40,
        "region": "emea",
        "segment": "smb",
        "owner_id": "usr_1",
        "csm_id": None,
        "workspace_id": f"ws_{account_id}",
        "billing_customer_id": None,
        "created_at": datetime(2024, 1, 1),
        "updated_at": updated,
        "is_deleted": deleted,
        "favourite_colour": "teal",
        **extra,
    }


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def crm_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    else:
        url = request.getfixturevalue(f"{request.param}_url")
    engine = sa.create_engine(url)
    tables = crm_schema(metadata := sa.MetaData())
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            tables["users"].insert(),
            [
                {
                    "user_id": "usr_1",
                    "full_name": "Ana Lima",
                    "email": "ana@vendor.io",
                    "team": "sales",
                    "updated_at": datetime(2024, 1, 1),
                },
            ],
        )
        connection.execute(
            tables["accounts"].insert(),
            [
                account("acc_1", datetime(2024, 8, 1)),
                account("acc_2", datetime(2024, 9, 2, 12)),
            ],
        )
        connection.execute(
            tables["contacts"].insert(),
            [
                {
                    "contact_id": "con_1",
                    "account_id": "acc_1",
                    "email": " Li.Wei@Example.com ",
                    "full_name": "李伟",
                    "title": None,
                    "is_primary": True,
                    "created_at": datetime(2024, 1, 1),
                    "updated_at": datetime(2024, 1, 1),
                },
            ],
        )
        connection.execute(
            tables["activities"].insert(),
            [
                {
                    "activity_id": "act_1",
                    "account_id": "acc_1",
                    "user_id": "usr_1",
                    "type": "complaint",
                    "occurred_at": datetime(2024, 8, 30, 9),
                    "subject": "服务太慢",
                    "body": "客服回复太慢",
                    "updated_at": datetime(2024, 8, 30, 9),
                },
            ],
        )
    engine.dispose()
    return url


def read_crm(url, since):
    settings = SourceSettings(crm_url=url, billing_url="", events_uri="", surveys_uri="")
    return extract(ExtractWindow(RUN, since), settings).batches


def rows_of(batches, name):
    return next(batch.rows for batch in batches if batch.table.name == name).to_pylist()


def test_full_read_keeps_every_column_and_text(crm_url):
    batches = read_crm(crm_url, None)
    accounts = {row["account_id"]: row for row in rows_of(batches, "crm_accounts")}
    assert sorted(accounts) == ["acc_1", "acc_2"]
    assert accounts["acc_1"]["is_deleted"] is False
    assert '"favourite_colour": "teal"' in accounts["acc_1"]["raw"]
    assert rows_of(batches, "crm_activities")[0]["body"] == "客服回复太慢"
    assert rows_of(batches, "crm_contacts")[0]["email"] == " Li.Wei@Example.com "


def test_incremental_read_takes_rows_updated_since(crm_url):
    batches = read_crm(crm_url, datetime(2024, 9, 1))
    assert [row["account_id"] for row in rows_of(batches, "crm_accounts")] == ["acc_2"]
    assert rows_of(batches, "crm_users") == []


def test_every_version_is_kept_and_soft_deletes_arrive(crm_url, tmp_path):
    warehouse = open_warehouse(str(tmp_path / "w.duckdb"))
    sources = SourceSettings(crm_url=crm_url, billing_url="", events_uri="", surveys_uri="")
    ingest("crm", RUN, sources, warehouse)
    engine = sa.create_engine(crm_url)
    accounts = crm_schema(sa.MetaData())["accounts"]
    with engine.begin() as connection:
        connection.execute(
            accounts.update()
            .where(accounts.c.account_id == "acc_2")
            .values(is_deleted=True, updated_at=datetime(2024, 9, 3, 8))
        )
    engine.dispose()
    ingest(
        "crm", RunWindow("night-2", datetime(2024, 9, 3), datetime(2024, 9, 4)), sources, warehouse
    )
    with warehouse.transaction() as tx:
        versions = tx.fetchall(
            "SELECT account_id, updated_at, is_deleted FROM raw.crm_accounts ORDER BY 1, 2"
        )
    assert versions == [
        ("acc_1", datetime(2024, 8, 1), False),
        ("acc_2", datetime(2024, 9, 2, 12), False),
        ("acc_2", datetime(2024, 9, 3, 8), True),
    ]


def test_a_table_missing_a_contract_column_is_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'broken.sqlite'}"
    engine = sa.create_engine(url)
    tables = crm_schema(metadata := sa.MetaData())
    metadata.remove(tables["accounts"])
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE accounts (account_id TEXT PRIMARY KEY, name TEXT, updated_at TIMESTAMP)"
            )
        )
    engine.dispose()
    with pytest.raises(ContractError, match="'accounts' lacks required column.*region"):
        read_crm(url, None)


def test_a_value_that_is_not_its_type_is_named_with_table_row_and_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    engine = sa.create_engine(url)
    tables = crm_schema(metadata := sa.MetaData())
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(tables["accounts"].insert(), [account("acc_1", datetime(2024, 9, 2))])
        connection.execute(sa.text("UPDATE accounts SET employee_count = 'forty'"))
    engine.dispose()
    with pytest.raises(
        ContractError,
        match="CRM table 'accounts', row account_id='acc_1'.*'employee_count' holds 'forty'",
    ):
        read_crm(url, None)


def test_a_column_the_driver_cannot_read_as_declared_is_a_clear_error(tmp_path):
    """SQLite keeps text in a NUMERIC column; SQLAlchemy then fails to read it as a number."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    engine = sa.create_engine(url)
    tables = crm_schema(metadata := sa.MetaData())
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(tables["accounts"].insert(), [account("acc_1", datetime(2024, 9, 2))])
        connection.execute(sa.text("CREATE TABLE copied AS SELECT * FROM accounts"))
        connection.execute(sa.text("DROP TABLE accounts"))
        connection.execute(sa.text("ALTER TABLE copied RENAME TO accounts"))
    engine.dispose()
    with pytest.raises(ContractError, match="CRM table 'accounts': a value does not match"):
        read_crm(url, None)


def test_a_missing_table_is_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    sa.create_engine(url).dispose()
    with pytest.raises(ContractError, match="CRM database has no table 'users'"):
        read_crm(url, None)


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_the_simulated_crm_on_a_real_server_extracts_whole(server, request, tmp_path):
    from churnhouse.devkit.simulator import simulate

    url = request.getfixturevalue(f"{server}_url")
    summary = simulate(
        out=tmp_path / "bundle", customers=30, months=6, start="2024-01", seed=2, crm_url=url
    )
    batches = {batch.table.name: batch.rows for batch in read_crm(url, None)}
    assert batches["crm_accounts"].num_rows == summary.counts["crm_accounts"]
    assert batches["crm_contacts"].num_rows == summary.counts["crm_contacts"]
    assert batches["crm_activities"].num_rows == summary.counts["crm_activities"]
    emails = batches["crm_contacts"].column("email").to_pylist()
    assert any(e != e.strip() or e != e.lower() for e in emails), (
        "mixed case and spaces arrive as-is"
    )
