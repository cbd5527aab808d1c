"""What can be sent: items read from the published tables (never the audit schema).

Kinds: `churn` (churn_events), `cancel_request` and `save` (cancel_saves),
`at_risk` (customers whose `customer_health.risk_level` became `high`; only when
that table is published). Each item has a stable id, the instant it happened
and the fields a team acts on. No contact e-mail or person's name unless a
route asks for the customer's contacts (added later, per route).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from churnhouse.contracts import PUBLISHED_SCHEMA
from churnhouse.query import run_query
from churnhouse.warehouse import Warehouse

EVENT_TITLES = {
    "churn": "churns",
    "cancel_request": "cancellation requests",
    "save": "cancel-flow saves",
    "at_risk": "customers entering high risk",
}
EVENT_TITLE = {
    "churn": "churn",
    "cancel_request": "cancellation request",
    "save": "cancel-flow save",
    "at_risk": "customer entering high risk",
}
EVENT_TABLES = {
    "churn": "churn_events",
    "cancel_request": "cancel_saves",
    "save": "cancel_saves",
    "at_risk": "customer_health",
}


@dataclass(frozen=True)
class Item:
    event: str  # churn, cancel_request, save or at_risk
    item_id: str
    at: datetime
    customer_key: str
    account_name: str | None
    segment: str | None
    # MRR (USD): lost (churn); at stake (request: lost by the churn that followed, else
    # current); saved (save); current (at risk).
    mrr: float | None
    reason_category: str | None = None
    reason_text: str | None = None
    archetype: str | None = None
    is_influenceable: bool | None = None
    churn_type: str | None = None
    offer: str | None = None
    risk_reasons: str | None = None
    csm_id: str | None = None
    contacts: tuple[dict, ...] = field(default=())

    def as_dict(self) -> dict:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["contacts"] = list(self.contacts)
        if not self.contacts:
            del data["contacts"]
        return data


@dataclass(frozen=True)
class Published:
    run_id: str
    as_of: datetime
    published_at: datetime | None


def _money(value) -> float | None:
    if value is None:
        return None
    return float(round(Decimal(value), 2))


def _ts(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        from datetime import UTC

        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _rows(warehouse: Warehouse, sql: str) -> list[dict]:
    columns, rows = run_query(warehouse, sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def publication(warehouse: Warehouse) -> Published | None:
    """The run and as_of of what is published; None when nothing is."""
    try:
        rows = _rows(warehouse, "SELECT run_id, as_of, published_at FROM _publication")
    except FileNotFoundError:
        return None
    except Exception as error:  # PostgreSQL before the first night: no analytics schema
        if "_publication" in str(error) or "does not exist" in str(error):
            return None
        raise
    if not rows:
        return None
    row = rows[0]
    published_at = row["published_at"]
    return Published(row["run_id"], _ts(row["as_of"]), _ts(published_at) if published_at else None)


def published_tables(warehouse: Warehouse) -> set[str]:
    rows = _rows(
        warehouse,
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = '{PUBLISHED_SCHEMA}'",
    )
    return {row["table_name"] for row in rows}


def _literal(moment: datetime) -> str:
    return f"CAST('{moment.isoformat(sep=' ')}' AS TIMESTAMP)"


def _account_name_sql(tables_columns: set[str]) -> str:
    return "c.account_name" if "account_name" in tables_columns else "CAST(NULL AS TEXT)"


def _dim_columns(warehouse: Warehouse) -> set[str]:
    rows = _rows(
        warehouse,
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = '{PUBLISHED_SCHEMA}' AND table_name = 'dim_customers'",
    )
    return {row["column_name"] for row in rows}


def churn_items(warehouse: Warehouse, since: datetime) -> list[Item]:
    """Every churn at or after `since`, with the primary reason in the customer's words."""
    name = _account_name_sql(_dim_columns(warehouse))
    sql = f"""
        SELECT e.customer_key, {name} AS account_name, c.segment, c.csm_id, e.churned_at,
               e.mrr_lost, e.reason_category, e.archetype, e.is_influenceable, e.churn_type,
               (SELECT min(r.raw_text) FROM churn_reasons r
                 WHERE r.customer_key = e.customer_key AND r.churned_at = e.churned_at
                   AND r.is_primary) AS reason_text
        FROM churn_events e LEFT JOIN dim_customers c ON c.customer_key = e.customer_key
        WHERE e.churned_at >= {_literal(since)}
        ORDER BY e.churned_at, e.customer_key
    """
    return [
        Item(
            event="churn",
            item_id=f"churn:{row['customer_key']}:{_ts(row['churned_at']).isoformat()}",
            at=_ts(row["churned_at"]),
            customer_key=row["customer_key"],
            account_name=row["account_name"],
            segment=row["segment"],
            mrr=_money(row["mrr_lost"]),
            reason_category=row["reason_category"],
            reason_text=row["reason_text"],
            archetype=row["archetype"],
            is_influenceable=row["is_influenceable"],
            churn_type=row["churn_type"],
            csm_id=row["csm_id"],
        )
        for row in _rows(warehouse, sql)
    ]


def cancel_flow_items(warehouse: Warehouse, since: datetime) -> list[Item]:
    """Cancellation requests and saves submitted at or after `since` (known customers only)."""
    name = _account_name_sql(_dim_columns(warehouse))
    sql = f"""
        SELECT s.response_id, s.customer_key, {name} AS account_name, c.segment, c.csm_id,
               s.submitted_at, s.is_save, s.saved_mrr, s.reason_category,
               coalesce(
                   (SELECT e.mrr_lost FROM churn_events e
                     WHERE e.customer_key = s.customer_key AND e.churned_at >= s.submitted_at
                     ORDER BY e.churned_at LIMIT 1),
                   c.current_mrr) AS mrr_at_stake,
               s.offer_presented,
               (SELECT min(r.raw_text) FROM churn_reasons r
                 WHERE r.source = 'survey' AND r.source_record_id = s.response_id) AS reason_text
        FROM cancel_saves s LEFT JOIN dim_customers c ON c.customer_key = s.customer_key
        WHERE s.submitted_at >= {_literal(since)} AND s.customer_key IS NOT NULL
        ORDER BY s.submitted_at, s.response_id
    """
    items = []
    for row in _rows(warehouse, sql):
        event = "save" if row["is_save"] else "cancel_request"
        items.append(
            Item(
                event=event,
                item_id=f"{event}:{row['response_id']}",
                at=_ts(row["submitted_at"]),
                customer_key=row["customer_key"],
                account_name=row["account_name"],
                segment=row["segment"],
                mrr=_money(row["saved_mrr"] if row["is_save"] else row["mrr_at_stake"]),
                reason_category=row["reason_category"],
                reason_text=row["reason_text"],
                offer=row["offer_presented"],
                csm_id=row["csm_id"],
            )
        )
    return items


def high_risk_now(warehouse: Warehouse) -> list[dict] | None:
    """Customers published as `high` risk, or None while `customer_health` is not published."""
    if "customer_health" not in published_tables(warehouse):
        return None
    name = _account_name_sql(_dim_columns(warehouse))
    return _rows(
        warehouse,
        f"""
        SELECT h.customer_key, {name} AS account_name, c.segment, c.csm_id, c.current_mrr,
               CAST(h.risk_reasons AS TEXT) AS risk_reasons
        FROM customer_health h LEFT JOIN dim_customers c ON c.customer_key = h.customer_key
        WHERE h.risk_level = 'high' ORDER BY h.customer_key
        """,
    )


def at_risk_item(row: dict, entered_at: datetime) -> Item:
    return Item(
        event="at_risk",
        item_id=f"at_risk:{row['customer_key']}:{entered_at.isoformat()}",
        at=entered_at,
        customer_key=row["customer_key"],
        account_name=row["account_name"],
        segment=row["segment"],
        mrr=_money(row["current_mrr"]),
        risk_reasons=row["risk_reasons"],
        csm_id=row["csm_id"],
    )
