"""How much of each source went to quarantine tonight, and whether a bad file stops the night.

A source whose quarantined share tonight (bad records / all records read) is above
`CHURN_QUARANTINE_MAX_SHARE` (default 0.10) fails the raw gate, once at least
`CHURN_QUARANTINE_MIN_ROWS` (default 10) records were quarantined: a renamed column
that quarantines every row is an outage, not bad input, while one bad row of three
on a quiet night is not. (Real exports carry a few percent of bad rows; the
simulated company quarantines about 5% of its survey rows by design.) A file the contract says
must stop the night (a survey export with a missing column, or not UTF-8) fails
it too, naming the file.
"""

from __future__ import annotations

import json
import os

from churnhouse.contracts import RunWindow
from churnhouse.gates.runner import Outcome, Validator
from churnhouse.warehouse import Warehouse


def max_quarantined_share() -> float:
    return float(os.environ.get("CHURN_QUARANTINE_MAX_SHARE", "0.10"))


def min_quarantined_rows() -> int:
    return int(os.environ.get("CHURN_QUARANTINE_MIN_ROWS", "10"))


def quarantine_outcomes(
    validator: Validator, warehouse: Warehouse, sources: tuple[str, ...], run: RunWindow
) -> list[Outcome]:
    """One outcome per source loaded tonight: its quarantined share and its refused files."""
    import pandas as pd

    loads = _tonights_loads(warehouse, sources, run)
    outcomes = []
    e = validator.gx.expectations
    for source, loaded, quarantined, blocking in loads:
        read = loaded + quarantined
        share = quarantined / read if read and quarantined >= min_quarantined_rows() else 0.0
        problems = json.loads(blocking) if blocking else []
        frame = pd.DataFrame(
            {
                "quarantined_share": [round(share, 4)] * max(1, len(problems)),
                "refused_file": problems or [None],
            }
        )
        expectations = [
            e.ExpectColumnValuesToBeBetween(
                column="quarantined_share", max_value=max_quarantined_share()
            ),
            e.ExpectColumnValuesToBeNull(column="refused_file"),
        ]
        table = f"raw._quarantine ({source})"
        outcomes.append(validator.frame(f"quarantine_{source}", frame, expectations, table))
    return outcomes


def _tonights_loads(
    warehouse: Warehouse, sources: tuple[str, ...], run: RunWindow
) -> list[tuple[str, int, int, str | None]]:
    """The latest successful load of each source in this run."""
    with warehouse.transaction() as tx:
        rows = tx.fetchall(
            "SELECT source, rows_loaded, rows_quarantined, blocking_files, finished_at "
            "FROM raw._loads WHERE run_id = ? AND status = 'success' ORDER BY finished_at",
            [run.run_id],
        )
    latest = {source: (source, loaded, bad, blocking) for source, loaded, bad, blocking, _ in rows}
    return [latest[source] for source in sources if source in latest]
