"""What the dashboard shows, read from the published tables only (read-only queries)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from churnhouse.query import run_query
from churnhouse.warehouse import Warehouse

# Tables of the at-risk, drivers, cohort and loyalty pages (issue 11); until they are
# published the page says so.
OPTIONAL_TABLES = (
    "customer_health",
    "risk_backtest",
    "churn_drivers",
    "cohort_retention",
    "loyalty_spend_segments",
)

_MONTHLY = (
    "SELECT month, segment, region, customers_start, new_customers, reactivated_customers, "
    "churned_customers, customers_end, mrr_start, new_mrr, reactivation_mrr, expansion_mrr, "
    "contraction_mrr, churned_mrr, mrr_end, logo_churn_rate, gross_revenue_churn_rate, "
    "net_revenue_retention FROM churn_monthly ORDER BY month, segment, region"
)
_REASONS = (
    "SELECT reason_category, count(*) AS churns, sum(mrr_lost) AS mrr_lost FROM churn_events "
    "GROUP BY reason_category ORDER BY churns DESC, mrr_lost DESC, reason_category"
)
_AT_RISK = (
    "SELECT h.customer_key, h.risk_level, h.risk_reasons, d.segment, d.region, d.current_mrr "
    "FROM customer_health AS h LEFT JOIN dim_customers AS d ON d.customer_key = h.customer_key "
    "WHERE h.risk_level IN ('high', 'medium') "
    "ORDER BY CASE h.risk_level WHEN 'high' THEN 0 ELSE 1 END, d.current_mrr DESC NULLS LAST, "
    "h.customer_key LIMIT 500"
)
_BACKTEST = (
    "SELECT month, flagged_customers, churned_flagged, churned_not_flagged, precision_rate, "
    "recall_rate, lift FROM risk_backtest ORDER BY month"
)
_DRIVERS = (
    "SELECT reason_category, churns, churn_share, churned_mrr, influenceable_share, "
    "priority_score, priority_rank FROM churn_drivers WHERE period = 'all' "
    "ORDER BY priority_rank, reason_category"
)
_COHORTS = (
    "SELECT cohort_month, months_since_start, cohort_customers, customers_active, "
    "logo_retention, revenue_retention FROM cohort_retention "
    "ORDER BY cohort_month, months_since_start"
)
_LOYALTY = (
    "SELECT month, nps_class, spend_tier, customers, mrr, churn_rate_next_90d, suggested_action "
    "FROM loyalty_spend_segments "
    "WHERE month = (SELECT max(month) FROM loyalty_spend_segments) ORDER BY nps_class, spend_tier"
)
_OPTIONAL_QUERIES = {
    "at_risk": ("customer_health", _AT_RISK),
    "backtest": ("risk_backtest", _BACKTEST),
    "drivers": ("churn_drivers", _DRIVERS),
    "cohorts": ("cohort_retention", _COHORTS),
    "loyalty": ("loyalty_spend_segments", _LOYALTY),
}


def published_tables(warehouse: Warehouse) -> set[str]:
    _, rows = run_query(
        warehouse,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'",
    )
    return {name for (name,) in rows}


def records(warehouse: Warehouse, sql: str) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: money and rates as numbers, dates as ISO text."""
    columns, rows = run_query(warehouse, sql)
    return [dict(zip(columns, map(_plain, row), strict=True)) for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def collect(warehouse: Warehouse) -> dict[str, Any]:
    """Everything the page draws. An optional table not published yet is None."""
    tables = published_tables(warehouse)
    if "churn_monthly" not in tables:
        raise FileNotFoundError("nothing published yet: no analytics.churn_monthly (run a night)")
    publication = records(warehouse, "SELECT run_id, as_of, published_at FROM _publication")
    data: dict[str, Any] = {
        "publication": publication[0] if publication else None,
        "monthly": records(warehouse, _MONTHLY),
        "reasons": records(warehouse, _REASONS),
    }
    for key, (table, sql) in _OPTIONAL_QUERIES.items():
        data[key] = records(warehouse, sql) if table in tables else None
    return data
