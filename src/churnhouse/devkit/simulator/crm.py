"""The CRM: four tables created with SQLAlchemy Core (portable types), rows bulk-inserted.

SQLite by default (`OUT/crm.sqlite`); any SQLAlchemy URL works, PostgreSQL
(psycopg2) and MariaDB (pymysql) are tested. Timestamps are naive UTC.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

import sqlalchemy as sa

from churnhouse.devkit.simulator.clock import utc_datetime
from churnhouse.devkit.simulator.model import Company

TABLE_ORDER = ("users", "accounts", "contacts", "activities")
_TIMES = {"updated_at", "created_at", "occurred_at"}


def crm_tables() -> tuple[sa.MetaData, dict[str, sa.Table]]:
    key, text, time = sa.String(64), sa.Text, sa.DateTime
    metadata = sa.MetaData()
    users = sa.Table(
        "users",
        metadata,
        sa.Column("user_id", key, primary_key=True),
        sa.Column("full_name", text),
        sa.Column("email", text),
        sa.Column("team", key),
        sa.Column("updated_at", time),
    )
    accounts = sa.Table(
        "accounts",
        metadata,
        sa.Column("account_id", key, primary_key=True),
        sa.Column("name", text),
        sa.Column("domain", text, nullable=True),
        sa.Column("industry", text, nullable=True),
        sa.Column("employee_count", sa.Integer, nullable=True),
        sa.Column("region", key),
        sa.Column("segment", key),
        sa.Column("owner_id", key, sa.ForeignKey("users.user_id")),
        sa.Column("csm_id", key, sa.ForeignKey("users.user_id"), nullable=True),
        sa.Column("workspace_id", key, nullable=True),
        sa.Column("billing_customer_id", key, nullable=True),
        sa.Column("created_at", time),
        sa.Column("updated_at", time),
        sa.Column("is_deleted", sa.Boolean),
    )
    contacts = sa.Table(
        "contacts",
        metadata,
        sa.Column("contact_id", key, primary_key=True),
        sa.Column("account_id", key, sa.ForeignKey("accounts.account_id")),
        sa.Column("email", text),
        sa.Column("full_name", text),
        sa.Column("title", text, nullable=True),
        sa.Column("is_primary", sa.Boolean),
        sa.Column("created_at", time),
        sa.Column("updated_at", time),
    )
    activities = sa.Table(
        "activities",
        metadata,
        sa.Column("activity_id", key, primary_key=True),
        sa.Column("account_id", key, sa.ForeignKey("accounts.account_id")),
        sa.Column("user_id", key, sa.ForeignKey("users.user_id")),
        sa.Column("type", key),
        sa.Column("occurred_at", time),
        sa.Column("subject", text),
        sa.Column("body", text, nullable=True),
        sa.Column("updated_at", time),
    )
    return metadata, {t.name: t for t in (users, accounts, contacts, activities)}


def _row(record) -> dict:
    row = asdict(record)
    for name in _TIMES & row.keys():
        row[name] = utc_datetime(row[name])
    return row


def crm_rows(companies: list[Company]) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {"accounts": [], "contacts": [], "activities": []}
    for company in companies:
        if company.account is None:
            continue
        rows["accounts"].append(_row(company.account))
        rows["contacts"] += [_row(contact) for contact in company.contacts]
        rows["activities"] += [_row(activity) for activity in company.activities]
    return rows


class CrmWriter:
    """Creates the tables afresh, then takes rows chunk by chunk (one transaction each)."""

    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        self.engine = sa.create_engine(url)
        self.metadata, self.tables = crm_tables()
        self.metadata.drop_all(self.engine)
        self.metadata.create_all(self.engine)
        self.counts: Counter = Counter()

    def write(self, rows: dict[str, list[dict]]) -> None:
        with self.engine.begin() as connection:
            for name in TABLE_ORDER:
                batch = rows.get(name)
                if batch:
                    connection.execute(self.tables[name].insert(), batch)
                    self.counts[name] += len(batch)

    def close(self) -> None:
        self.engine.dispose()
