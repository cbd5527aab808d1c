"""raw.billing_subscriptions — re-read in full every night."""

from churnhouse.sources.billing import SUBSCRIPTIONS

TABLE = SUBSCRIPTIONS.qualified_name
BOUNDARY = "raw"

STATUSES = [
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "incomplete",
    "incomplete_expired",
    "paused",
]


def expectations(gx, facts):
    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotBeNull(column="id"),
        e.ExpectColumnValuesToBeUnique(column="id"),
        e.ExpectColumnValuesToNotBeNull(column="customer"),
        e.ExpectColumnValuesToBeInSet(column="status", value_set=STATUSES),
        e.ExpectColumnValuesToBeInSet(
            column="cancellation_reason",
            value_set=["cancellation_requested", "payment_failed", "payment_disputed"],
        ),
    ]
