"""Tonight's marts against the last published night: a silent collapse stops the night.

Every check upstream can pass while the numbers are wrong as a whole — a billing
export whose lines lost their recurring prices loads cleanly and publishes zero
MRR. Months that were already closed at the last publication barely move from one
night to the next (late data and restated invoices nudge them), so three figures of
the last month closed on both nights are compared: total MRR and active customers at
its close, and the churn rows of all closed months. A figure that moves by more than
`CHURN_COLLAPSE_MAX_SHARE` (default 0.5) of its published value fails the marts gate,
naming the figure and both values. The first publication has nothing to compare.
"""

from __future__ import annotations

import os
from datetime import date, datetime

from churnhouse.contracts import AUDIT_SCHEMA, PUBLISHED_SCHEMA, RunWindow
from churnhouse.gates.runner import Outcome, Validator
from churnhouse.warehouse import Warehouse

TABLE = f"{AUDIT_SCHEMA}.churn_monthly, churn_events"


def max_collapse_share() -> float:
    return float(os.environ.get("CHURN_COLLAPSE_MAX_SHARE", "0.5"))


def closed_before(as_of: datetime) -> date:
    """The first day of the month holding `as_of`: every month before it is closed."""
    return date(as_of.year, as_of.month, 1)


def _previous_month(first_day: date) -> date:
    return date(first_day.year - (first_day.month == 1), (first_day.month - 2) % 12 + 1, 1)


def _figures(warehouse: Warehouse, schema: str, cutoff: date) -> dict[str, float]:
    last_closed = _previous_month(cutoff)
    monthly = warehouse.read_frame(
        f"SELECT mrr_end, customers_end FROM {schema}.churn_monthly "
        "WHERE segment = 'all' AND region = 'all' AND month = ?",
        [last_closed],
    )
    churns = warehouse.read_frame(
        f"SELECT count(*) AS n FROM {schema}.churn_events WHERE churned_at < ?", [cutoff]
    )
    month = last_closed.strftime("%Y-%m")
    mrr, customers = (
        (float(monthly.mrr_end.iloc[0]), float(monthly.customers_end.iloc[0]))
        if len(monthly)
        else (0.0, 0.0)
    )
    return {
        f"total MRR at the close of {month}": mrr,
        f"active customers at the close of {month}": customers,
        f"churn rows of the months before {cutoff:%Y-%m}": float(churns.n.iloc[0]),
    }


def collapse_problem(figure: str, published: float, tonight: float, share: float) -> str | None:
    """The failure text when `tonight` moved more than `share` of `published`."""
    if published == 0:
        return None  # nothing to collapse from; growth from zero is not a collapse
    moved = abs(tonight - published) / abs(published)
    if moved <= share:
        return None
    return (
        f"{figure}: published {published:,.2f}, tonight {tonight:,.2f} "
        f"({moved:.0%} moved; at most {share:.0%} allowed, CHURN_COLLAPSE_MAX_SHARE)"
    )


def collapse_outcome(
    validator: Validator, warehouse: Warehouse, run: RunWindow, schema: str = AUDIT_SCHEMA
) -> Outcome | None:
    """Tonight's closed-month figures against the published ones (None before a first publish)."""
    published_as_of = warehouse.published_as_of(PUBLISHED_SCHEMA)
    if published_as_of is None:
        return None
    import pandas as pd

    cutoff = closed_before(min(published_as_of, run.interval_end))
    tonight = _figures(warehouse, schema, cutoff)
    with warehouse.published_for_dbt() as published_warehouse:
        published = _figures(published_warehouse, PUBLISHED_SCHEMA, cutoff)
    share = max_collapse_share()
    frame = pd.DataFrame(
        {
            "figure": list(tonight),
            "published": [published[name] for name in tonight],
            "tonight": list(tonight.values()),
            "collapse": [
                collapse_problem(name, published[name], value, share)
                for name, value in tonight.items()
            ],
        }
    )
    expectation = validator.gx.expectations.ExpectColumnValuesToBeNull(column="collapse")
    return validator.frame("marts_against_published", frame, [expectation], TABLE)
