"""Every gate outcome is kept in `raw._validation_runs`."""

from __future__ import annotations

import json

from churnhouse.contracts import RAW_SCHEMA, RunWindow, utc_now
from churnhouse.gates.runner import Outcome
from churnhouse.warehouse import Warehouse

VALIDATION_RUNS = f"{RAW_SCHEMA}._validation_runs"


def record_outcomes(
    warehouse: Warehouse, run: RunWindow, boundary: str, outcomes: list[Outcome]
) -> None:
    now = utc_now()
    with warehouse.transaction() as tx:
        tx.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {VALIDATION_RUNS} (run_id TEXT, boundary TEXT, "
            "suite TEXT, guarded_table TEXT, success BOOLEAN, evaluated INTEGER, failed INTEGER, "
            "details TEXT, validated_at TIMESTAMP)"
        )
        for outcome in outcomes:
            details = [failure.describe() for failure in outcome.failures]
            tx.execute(
                f"INSERT INTO {VALIDATION_RUNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run.run_id,
                    boundary,
                    outcome.suite,
                    outcome.table,
                    outcome.success,
                    outcome.evaluated,
                    len(outcome.failures),
                    json.dumps(details, ensure_ascii=False, default=str),
                    now,
                ],
            )
