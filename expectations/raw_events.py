"""raw.events — the night's batch of product events."""

from churnhouse.sources.events import EVENTS

TABLE = EVENTS.qualified_name
BOUNDARY = "raw"
# Rows per received day; a night under half its usual volume fails (churnhouse.gates.volume).
VOLUME_COLUMN = "dt"


def expectations(gx, facts):
    e = gx.expectations
    return [
        *(e.ExpectColumnToExist(column=c) for c in ("message_id", "type", "event_at", "group_id")),
        e.ExpectColumnValuesToNotBeNull(column="message_id"),
        e.ExpectColumnValuesToBeUnique(column="message_id"),
        e.ExpectColumnValuesToNotBeNull(column="event_at"),
        # Any call type is accepted (sources.md section 3): track, identify, group, page,
        # screen, alias, and types not listed, which stay in raw and the marts ignore.
        e.ExpectColumnValuesToNotBeNull(column="type"),
        e.ExpectColumnValuesToBeBetween(
            column="event_at", min_value=facts["earliest_sane"], max_value=facts["latest_sane"]
        ),
    ]
