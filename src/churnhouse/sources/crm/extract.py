"""Read the CRM's four tables incrementally into Arrow batches."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from churnhouse.config import SourceSettings
from churnhouse.contracts import (
    Batch,
    Extracted,
    ExtractWindow,
    RawTable,
    RunWindow,
    naive_utc,
    with_meta,
)
from churnhouse.errors import ContractError, PermanentError

SOURCE = "crm"

_VERSION = {"updated_at": "TIMESTAMP", "raw": "TEXT"}

CRM_TABLES: dict[str, RawTable] = {
    "users": RawTable(
        "crm_users",
        {"user_id": "TEXT", "full_name": "TEXT", "email": "TEXT", "team": "TEXT", **_VERSION},
        key=("user_id", "updated_at"),
        person_name_columns=("full_name",),
    ),
    "accounts": RawTable(
        "crm_accounts",
        {
            "account_id": "TEXT",
            "name": "TEXT",
            "domain": "TEXT",
            "industry": "TEXT",
            "employee_count": "BIGINT",
            "region": "TEXT",
            "segment": "TEXT",
            "owner_id": "TEXT",
            "csm_id": "TEXT",
            "workspace_id": "TEXT",
            "billing_customer_id": "TEXT",
            "created_at": "TIMESTAMP",
            "is_deleted": "BOOLEAN",
            **_VERSION,
        },
        key=("account_id", "updated_at"),
    ),
    "contacts": RawTable(
        "crm_contacts",
        {
            "contact_id": "TEXT",
            "account_id": "TEXT",
            "email": "TEXT",
            "full_name": "TEXT",
            "title": "TEXT",
            "is_primary": "BOOLEAN",
            "created_at": "TIMESTAMP",
            **_VERSION,
        },
        key=("contact_id", "updated_at"),
        person_name_columns=("full_name",),
    ),
    "activities": RawTable(
        "crm_activities",
        {
            "activity_id": "TEXT",
            "account_id": "TEXT",
            "user_id": "TEXT",
            "type": "TEXT",
            "occurred_at": "TIMESTAMP",
            "subject": "TEXT",
            "body": "TEXT",
            **_VERSION,
        },
        key=("activity_id", "updated_at"),
    ),
}


def to_utc(value) -> datetime | None:
    """A CRM timestamp (datetime or ISO text, any offset) as naive UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return naive_utc(value)


def _to_bool(value) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "t", "yes"}
    return bool(value)


def _json_safe(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _convert(value, sql_type: str):
    if sql_type == "TIMESTAMP":
        return to_utc(value)
    if sql_type == "BOOLEAN":
        return _to_bool(value)
    if sql_type == "BIGINT":
        return None if value is None or value == "" else int(value)
    return None if value is None else str(value)


def _read_table(
    engine, source_table: str, raw: RawTable, since: datetime | None, run: RunWindow
) -> Batch:
    import sqlalchemy as sa

    try:
        table = sa.Table(source_table, sa.MetaData(), autoload_with=engine)
    except sa.exc.NoSuchTableError as error:
        raise ContractError(f"CRM database has no table {source_table!r}") from error
    missing = [name for name in raw.columns if name != "raw" and name not in table.c]
    if missing:
        raise ContractError(
            f"CRM table {source_table!r} lacks required column(s): {', '.join(missing)}"
        )
    query = sa.select(table)
    if since is not None:
        query = query.where(table.c.updated_at >= since)
    columns: dict[str, list] = {name: [] for name in raw.columns}
    with engine.connect() as connection:
        try:
            for row in connection.execute(query).mappings():
                for name, sql_type in raw.columns.items():
                    if name == "raw":
                        row_json = {k: _json_safe(v) for k, v in row.items()}
                        columns[name].append(json.dumps(row_json, ensure_ascii=False))
                    else:
                        columns[name].append(_checked_value(source_table, raw, row, name, sql_type))
        except ContractError:
            raise
        except (TypeError, ValueError) as error:  # the driver could not read a declared type
            raise ContractError(
                f"CRM table {source_table!r}: a value does not match its column's declared "
                f"type ({error}); check the table's column types"
            ) from error
    return Batch(raw, with_meta(raw, columns, SOURCE, run))


def _checked_value(source_table: str, raw: RawTable, row, name: str, sql_type: str):
    """`_convert`, or a ContractError naming table, row key, column and value."""
    try:
        return _convert(row[name], sql_type)
    except (TypeError, ValueError) as error:
        key = ", ".join(f"{column}={row[column]!r}" for column in raw.key if column != name)
        raise ContractError(
            f"CRM table {source_table!r}, row {key or '?'}: column {name!r} holds "
            f"{row[name]!r}, not a {sql_type.lower()}"
        ) from error


def _connected_engine(crm_url: str):
    """An engine that has reached the CRM database; a few quick tries, then a permanent
    error naming the setting (a wrong URL does not get better with minutes of retries)."""
    import time

    import sqlalchemy as sa

    engine = sa.create_engine(crm_url, connect_args=_connect_timeout(crm_url))
    for attempt in range(1, 4):
        try:
            with engine.connect():
                return engine
        except sa.exc.OperationalError as error:
            if attempt == 3:
                engine.dispose()
                where = engine.url.render_as_string(hide_password=True)
                raise PermanentError(
                    f"cannot reach the CRM database {where} (CHURN_CRM_URL / connection "
                    f"churn_crm): {str(error.orig).splitlines()[0][:200]}"
                ) from error
            time.sleep(attempt)
    raise AssertionError("unreachable")


def _connect_timeout(crm_url: str) -> dict:
    """Five seconds to connect, for the drivers that take the setting."""
    return {"connect_timeout": 5} if crm_url.startswith(("postgres", "mysql", "mariadb")) else {}


def extract(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    """Every row of the four tables with `updated_at >= since` (all rows when since is None)."""
    engine = _connected_engine(settings.crm_url)
    try:
        return Extracted(
            [
                _read_table(engine, name, raw, window.since, window.run)
                for name, raw in CRM_TABLES.items()
            ]
        )
    finally:
        engine.dispose()
