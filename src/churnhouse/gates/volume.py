"""Tonight's volume of a source against its usual volume.

"Usual" is the median of the same weekday over the last weeks when at least two
of them have data (B2B usage dips at weekends), else the median of the trailing
days. A night under half of it fails loudly.
"""

from __future__ import annotations

import statistics
from datetime import timedelta

from churnhouse.contracts import RunWindow
from churnhouse.gates.runner import Outcome, Validator
from churnhouse.gates.suites import Suite
from churnhouse.warehouse import Warehouse, checked_identifier

VOLUME_FLOOR = 0.5
TRAILING_DAYS = 7
SAME_WEEKDAY_WEEKS = 4


def usual_volume(same_weekday: list[int], trailing: list[int]) -> tuple[float, str]:
    """The volume a night is held against, and in words what it was taken from."""
    weeks = [count for count in same_weekday if count > 0]
    if len(weeks) >= 2:
        return statistics.median(weeks), f"median of the same weekday over {len(weeks)} weeks"
    return statistics.median(trailing), f"median of the trailing {len(trailing)} days"


def volume_outcome(
    validator: Validator, warehouse: Warehouse, suite: Suite, run: RunWindow
) -> Outcome | None:
    """Tonight's rows against the usual volume (None without a volume column or history)."""
    if suite.volume_column is None:
        return None
    daily = run.interval_end - run.interval_start == timedelta(days=1)
    weekly_backs = [7 * week for week in range(1, SAME_WEEKDAY_WEEKS + 1)] if daily else []
    backs = [0, *range(1, TRAILING_DAYS + 1), *weekly_backs]
    column = checked_identifier(suite.volume_column)
    tonight, *history = _counts_back(warehouse, suite.table, column, run, backs)
    usual, basis = usual_volume(history[TRAILING_DAYS:], history[:TRAILING_DAYS])
    if usual == 0:
        return None
    import pandas as pd

    frame = pd.DataFrame({"rows_tonight": [tonight], "usual_rows": [usual], "basis": [basis]})
    expectation = validator.gx.expectations.ExpectColumnValuesToBeBetween(
        column="rows_tonight", min_value=int(VOLUME_FLOOR * usual)
    )
    name = f"volume_{suite.table.rsplit('.', 1)[-1]}"
    return validator.frame(name, frame, [expectation], suite.table)


def _counts_back(
    warehouse: Warehouse, table: str, column: str, run: RunWindow, backs: list[int]
) -> list[int]:
    """Rows per interval-length period, `back` periods before tonight's, for each of `backs`."""
    length = run.interval_end - run.interval_start
    with warehouse.transaction() as tx:
        return [
            tx.fetchone(
                f"SELECT count(*) FROM {table} WHERE {column} >= ? AND {column} < ?",
                [run.interval_start - back * length, run.interval_start - back * length + length],
            )[0]
            for back in backs
        ]
