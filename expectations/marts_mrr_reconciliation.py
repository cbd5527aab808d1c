"""Reconciliation: each month's published total MRR against the billing lines it came from.

The MRR at the close of every month is recomputed here straight from the raw
billing lines, net of discounts (docs/metrics.md, "Money: MRR"), independently of the dbt models,
and must equal the `all`/`all` row of churn_monthly to the cent.
"""

from churnhouse.contracts import AUDIT_SCHEMA

TABLE = f"{AUDIT_SCHEMA}.churn_monthly"
BOUNDARY = "marts"

QUERY = """
WITH lines AS (
    SELECT l.period_start AS s,
           CASE WHEN sub.ended_at IS NOT NULL AND sub.ended_at < l.period_end
                THEN sub.ended_at ELSE l.period_end END AS e,
           CAST(l.amount - coalesce(l.discount_amount, 0) AS DECIMAL(38, 12))
             / CASE WHEN lower(l.currency) IN (SELECT currency FROM seeds.zero_decimal_currencies)
                    THEN 1 ELSE 100 END
             / l.recurring_interval_count
             * CASE l.recurring_interval WHEN 'month' THEN 1.0 WHEN 'year' THEN 1.0 / 12
                    WHEN 'week' THEN 52.0 / 12 WHEN 'day' THEN 365.0 / 12 END
             * CASE WHEN lower(l.currency) = 'usd' THEN 1
                    ELSE CAST(fx.rate_to_usd AS DECIMAL(38, 12)) END AS monthly_usd
    FROM raw.billing_invoice_lines AS l
    JOIN raw.billing_invoices AS i ON i.id = l.invoice_id
    LEFT JOIN raw.billing_subscriptions AS sub ON sub.id = coalesce(l.subscription, i.subscription)
    LEFT JOIN raw.fx_rates AS fx
      ON lower(fx.currency) = lower(l.currency)
     AND CAST(substr(fx.month, 1, 4) AS INTEGER) = EXTRACT(YEAR FROM l.period_start)
     AND CAST(substr(fx.month, 6, 2) AS INTEGER) = EXTRACT(MONTH FROM l.period_start)
    WHERE i.status IN ('paid', 'open') AND l.recurring_interval IS NOT NULL AND NOT l.proration
), published AS (
    SELECT month, mrr_end FROM {schema}.churn_monthly WHERE segment = 'all' AND region = 'all'
), recomputed AS (
    SELECT p.month, p.mrr_end, coalesce(sum(l.monthly_usd), 0) AS mrr_from_lines
    FROM published AS p
    LEFT JOIN lines AS l
      ON l.s < p.month + INTERVAL '1 month' AND p.month + INTERVAL '1 month' <= l.e
    GROUP BY p.month, p.mrr_end
)
SELECT month, CAST(mrr_end AS DOUBLE PRECISION) AS mrr_end,
       CAST(mrr_from_lines AS DOUBLE PRECISION) AS mrr_from_lines,
       CAST(mrr_end - mrr_from_lines AS DOUBLE PRECISION) AS difference
FROM recomputed
"""


def expectations(gx, facts):
    e = gx.expectations
    return [e.ExpectColumnValuesToBeBetween(column="difference", min_value=-0.005, max_value=0.005)]
