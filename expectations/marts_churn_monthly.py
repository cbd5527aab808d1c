"""analytics_audit.churn_monthly — checked before it is published."""

TABLE = "analytics_audit.churn_monthly"
BOUNDARY = "marts"
SOURCE = None

# The identities of the metrics spec, as gaps that must be zero. Money is
# published rounded to the cent per column, so the MRR gap may carry rounding
# of at most half a cent per term (7 terms).
QUERY = """
SELECT month, segment, region, logo_churn_rate, gross_revenue_churn_rate,
       net_revenue_retention, customers_start, customers_end,
       customers_start - churned_customers + new_customers + reactivated_customers
           - customers_end AS customers_identity_gap,
       CAST(mrr_start + new_mrr + reactivation_mrr + expansion_mrr - contraction_mrr
           - churned_mrr - mrr_end AS DOUBLE PRECISION) AS mrr_identity_gap
FROM {schema}.churn_monthly
"""


def expectations(gx, facts):
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["month", "segment", "region"]),
        *(e.ExpectColumnValuesToNotBeNull(column=c) for c in ("month", "segment", "region")),
        e.ExpectColumnValuesToBeBetween(column="logo_churn_rate", min_value=0, max_value=1),
        e.ExpectColumnValuesToBeBetween(
            column="gross_revenue_churn_rate", min_value=0, max_value=1
        ),
        e.ExpectColumnValuesToBeBetween(column="net_revenue_retention", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="customers_identity_gap", min_value=0, max_value=0),
        e.ExpectColumnValuesToBeBetween(
            column="mrr_identity_gap", min_value=-0.035, max_value=0.035
        ),
    ]
