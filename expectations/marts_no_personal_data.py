"""Every text value of the audit schema: no e-mail address, no person's name."""

from churnhouse.contracts import AUDIT_SCHEMA

TABLE = f"{AUDIT_SCHEMA}.*"
BOUNDARY = "marts"

EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"

# Filled by churnhouse.gates.pii: one row per (table, column, value) of every text column.
QUERY = None


def expectations(gx, facts):
    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotMatchRegex(column="value", regex=EMAIL),
        e.ExpectColumnValuesToNotBeInSet(column="value", value_set=facts["person_names"]),
    ]
