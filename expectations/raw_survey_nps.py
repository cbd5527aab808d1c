"""raw.survey_nps — NPS responses (bad rows were quarantined before this point)."""

from churnhouse.sources.surveys import NPS

TABLE = NPS.qualified_name
BOUNDARY = "raw"


def expectations(gx, facts):
    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotBeNull(column="response_id"),
        e.ExpectColumnValuesToBeUnique(column="response_id"),
        e.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=10),
        e.ExpectColumnValuesToNotBeNull(column="submitted_at"),
    ]
