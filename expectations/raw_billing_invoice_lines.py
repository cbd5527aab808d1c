"""raw.billing_invoice_lines — the lines MRR is computed from."""

from churnhouse.sources.billing import INVOICE_LINES

TABLE = INVOICE_LINES.qualified_name
BOUNDARY = "raw"


def expectations(gx, facts):
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=["invoice_id", "line_id"]),
        *(
            e.ExpectColumnValuesToNotBeNull(column=c)
            for c in ("invoice_id", "line_id", "amount", "currency", "period_start", "period_end")
        ),
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="period_end", column_B="period_start", or_equal=True
        ),
        e.ExpectColumnValuesToBeInSet(
            column="recurring_interval", value_set=["day", "week", "month", "year"]
        ),
        # A price no list knows, or a subscription line without a recurring interval,
        # would silently be zero MRR (docs/sources.md, "Two object shapes").
        e.ExpectColumnValuesToBeNull(column="line_problem"),
        e.ExpectColumnValuesToBeBetween(
            column="period_start", min_value=facts["earliest_sane"], max_value=facts["latest_sane"]
        ),
    ]
