"""The alerts ledger in the warehouse (schema `raw`): what was sent where, exactly once.

- `raw._alerts_sent`: one row per (channel, item) delivered; a rerun or backfill
  skips what is here, a failed delivery writes nothing, so the next night sends it.
- `raw._alerts_channels`: when each channel started; its first night sends
  nothing older than that (as_of minus the look-back), later nights everything since.
- `raw._alerts_deliveries`: every attempt (items, ok or the error) for the record.
- `raw._alerts_risk_episodes`: when each customer entered `high` risk (and left it),
  so "entering high" is one item per episode.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from churnhouse.contracts import RAW_SCHEMA as SCHEMA
from churnhouse.warehouse import Warehouse

_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}._alerts_sent (channel TEXT NOT NULL, "
    "item_id TEXT NOT NULL, item_kind TEXT, item_at TIMESTAMP, run_id TEXT, "
    "sent_at TIMESTAMP, PRIMARY KEY (channel, item_id))",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}._alerts_channels (channel TEXT PRIMARY KEY, "
    "since TIMESTAMP NOT NULL, first_run_id TEXT, created_at TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}._alerts_deliveries (channel TEXT, run_id TEXT, "
    "items INTEGER, ok BOOLEAN, error TEXT, attempted_at TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}._alerts_risk_episodes (customer_key TEXT NOT NULL, "
    "entered_at TIMESTAMP NOT NULL, left_at TIMESTAMP, PRIMARY KEY (customer_key, entered_at))",
)


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC).replace(tzinfo=None)


def ensure_ledger(warehouse: Warehouse) -> None:
    with warehouse.transaction() as tx:
        for statement in _DDL:
            tx.execute(statement)


def channel_since(
    warehouse: Warehouse, channel: str, as_of: datetime, lookback_days: int, run_id: str
) -> datetime:
    """Where this channel's items start: registered on its first night at as_of - look-back."""
    with warehouse.transaction() as tx:
        row = tx.fetchone(
            f"SELECT since FROM {SCHEMA}._alerts_channels WHERE channel = ?", [channel]
        )
        if row:
            return row[0]
        since = as_of - timedelta(days=lookback_days)
        tx.execute(
            f"INSERT INTO {SCHEMA}._alerts_channels VALUES (?, ?, ?, ?)",
            [channel, since, run_id, _now()],
        )
        return since


def sent_ids(warehouse: Warehouse, channel: str) -> set[str]:
    with warehouse.transaction() as tx:
        rows = tx.fetchall(
            f"SELECT item_id FROM {SCHEMA}._alerts_sent WHERE channel = ?", [channel]
        )
    return {item_id for (item_id,) in rows}


def record_delivery(
    warehouse: Warehouse, channel: str, run_id: str, items: Iterable, error: str | None
) -> None:
    """One attempt; on success every item is marked sent on this channel in the same commit."""
    items = list(items)
    now = _now()
    with warehouse.transaction() as tx:
        tx.execute(
            f"INSERT INTO {SCHEMA}._alerts_deliveries VALUES (?, ?, ?, ?, ?, ?)",
            [channel, run_id, len(items), error is None, error, now],
        )
        if error is not None:
            return
        for item in items:
            tx.execute(
                f"INSERT INTO {SCHEMA}._alerts_sent VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [channel, item.item_id, item.event, item.at, run_id, now],
            )


def risk_episodes(warehouse: Warehouse, high_now: set[str], as_of: datetime) -> dict[str, datetime]:
    """Open an episode for each customer newly high, close those no longer high; return
    customer -> entered_at of every open episode. A night older than the latest one
    seen changes nothing (a backfill does not reopen history)."""
    with warehouse.transaction() as tx:
        latest = tx.fetchone(
            f"SELECT max(greatest(entered_at, coalesce(left_at, entered_at))) "
            f"FROM {SCHEMA}._alerts_risk_episodes"
        )[0]
        if latest is None or as_of >= latest:
            open_now = dict(
                tx.fetchall(
                    f"SELECT customer_key, entered_at FROM {SCHEMA}._alerts_risk_episodes "
                    "WHERE left_at IS NULL"
                )
            )
            for customer in sorted(set(open_now) - high_now):
                tx.execute(
                    f"UPDATE {SCHEMA}._alerts_risk_episodes SET left_at = ? "
                    "WHERE customer_key = ? AND left_at IS NULL",
                    [as_of, customer],
                )
            for customer in sorted(high_now - set(open_now)):
                tx.execute(
                    f"INSERT INTO {SCHEMA}._alerts_risk_episodes VALUES (?, ?, NULL)",
                    [customer, as_of],
                )
        rows = tx.fetchall(
            f"SELECT customer_key, entered_at FROM {SCHEMA}._alerts_risk_episodes "
            "WHERE left_at IS NULL"
        )
    return dict(rows)


def ledger_exists(warehouse: Warehouse) -> bool:
    with warehouse.transaction() as tx:
        return bool(
            tx.fetchall(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = ? AND table_name = '_alerts_risk_episodes'",
                [SCHEMA],
            )
        )


def open_risk_episodes(warehouse: Warehouse) -> dict[str, datetime]:
    """customer -> entered_at of the open high-risk episodes, read only (for a dry run)."""
    if not ledger_exists(warehouse):
        return {}
    with warehouse.transaction() as tx:
        rows = tx.fetchall(
            f"SELECT customer_key, entered_at FROM {SCHEMA}._alerts_risk_episodes "
            "WHERE left_at IS NULL"
        )
    return dict(rows)


def recorded_state(warehouse: Warehouse, channel: str) -> tuple[datetime | None, set[str]]:
    """A channel's registered start (None before its first night) and the items it got,
    read only (for a dry run)."""
    if not ledger_exists(warehouse):
        return None, set()
    with warehouse.transaction() as tx:
        row = tx.fetchone(
            f"SELECT since FROM {SCHEMA}._alerts_channels WHERE channel = ?", [channel]
        )
    return (row[0] if row else None), sent_ids(warehouse, channel)
