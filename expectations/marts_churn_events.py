"""analytics_audit.churn_events — every churn carries its type and primary reason."""

TABLE = "analytics_audit.churn_events"
BOUNDARY = "marts"
SOURCE = None

QUERY = """
SELECT customer_key, churned_at, churn_type, reason_category, archetype, mrr_lost, tenure_days
FROM {schema}.churn_events
"""


def expectations(gx, facts):
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["customer_key", "churned_at"]),
        e.ExpectColumnValuesToNotBeNull(column="reason_category"),
        e.ExpectColumnValuesToNotBeNull(column="archetype"),
        e.ExpectColumnValuesToBeInSet(column="churn_type", value_set=["voluntary", "involuntary"]),
        e.ExpectColumnValuesToBeInSet(
            column="archetype",
            value_set=["graduated", "external", "we_messed_up", "habit_change", "other"],
        ),
        e.ExpectColumnValuesToBeBetween(column="mrr_lost", min_value=0, strict_min=True),
        e.ExpectColumnValuesToBeBetween(column="tenure_days", min_value=0),
    ]
