"""Every text value of the audit schema: no e-mail address, no person's name."""

TABLE = "analytics_audit.*"
BOUNDARY = "marts"
SOURCE = None

EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"

# Filled by the runner: one row per (table, column, value) of every text column.
QUERY = None


def expectations(gx, facts):
    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotMatchRegex(column="value", regex=EMAIL),
        e.ExpectColumnValuesToNotBeInSet(column="value", value_set=facts["person_names"]),
    ]
