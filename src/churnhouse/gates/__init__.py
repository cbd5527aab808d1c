"""The Great Expectations gates a night passes: raw (tonight's batches) and marts (the audit
schema before publication).

Suites are code in `expectations/` (`suites`), validated by one GE context per
gate (`runner`), with each source's volume held against its usual (`volume`) and
the published text scanned for personal data (`pii`), tonight's closed months held
against the published ones (`collapse`); every outcome is recorded
(`record`) and any failure raises `GateFailed` listing each failed expectation
with a sample of the offending values.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from churnhouse.contracts import AUDIT_SCHEMA, RunWindow
from churnhouse.gates.collapse import collapse_outcome
from churnhouse.gates.hold import hold_rejected_rows
from churnhouse.gates.pii import person_names, text_values_sql
from churnhouse.gates.quarantine import quarantine_outcomes
from churnhouse.gates.record import VALIDATION_RUNS, record_outcomes
from churnhouse.gates.runner import (
    GateFailed,
    Outcome,
    Validator,
    columns_checked,
    data_docs_dir,
    raise_on_failure,
)
from churnhouse.gates.suites import suites
from churnhouse.gates.volume import volume_outcome
from churnhouse.warehouse import Warehouse

__all__ = [
    "VALIDATION_RUNS",
    "GateFailed",
    "Outcome",
    "data_docs_dir",
    "run_marts_gate",
    "run_raw_gate",
]


def _sane_window(run: RunWindow) -> dict:
    return {
        "earliest_sane": datetime(2000, 1, 1),
        "latest_sane": run.interval_end + timedelta(days=400),
    }


def run_raw_gate(
    warehouse: Warehouse, sources: str | tuple[str, ...], run: RunWindow
) -> list[Outcome]:
    """Validate the night's batch of the sources; raise GateFailed listing every failure."""
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    with warehouse.held():
        return _raw_gate(warehouse, sources, run)


def _raw_gate(warehouse: Warehouse, sources: tuple[str, ...], run: RunWindow) -> list[Outcome]:
    validator = Validator(run.run_id)
    facts = _sane_window(run)
    outcomes, rejected = [], []
    for suite in suites("raw", sources):
        expectations = suite.expectations(validator.gx, facts)
        columns = ", ".join(columns_checked(expectations))
        sql = f"SELECT {columns} FROM {suite.table} WHERE _run_id = ?"
        outcome = validator.query(
            warehouse, suite.name, sql, [run.run_id], expectations, suite.table
        )
        outcomes.append(outcome)
        if not outcome.success:
            rejected.append((suite.source, suite.table, expectations, outcome))
        volume = volume_outcome(validator, warehouse, suite, run)
        if volume is not None:
            outcomes.append(volume)
    outcomes.extend(quarantine_outcomes(validator, warehouse, sources, run))

    # The site index is rebuilt once a night, by the marts gate, which lists these
    # validations too; a failing raw gate (the night stops here) rebuilds it itself.
    validator.finish(build_index=not all(outcome.success for outcome in outcomes))
    record_outcomes(warehouse, run, "raw", outcomes)
    if rejected:
        held = hold_rejected_rows(warehouse, run, rejected)
        print(f"raw gate: {held} rejected row(s) held in raw._quarantine", flush=True)
    raise_on_failure(f"raw gate for {', '.join(sources)}", outcomes)
    return outcomes


def run_marts_gate(
    warehouse: Warehouse, run: RunWindow, schema: str = AUDIT_SCHEMA
) -> list[Outcome]:
    """Validate the night's marts in the audit schema before they are published."""
    with warehouse.held():
        return _marts_gate(warehouse, run, schema)


def _marts_gate(warehouse: Warehouse, run: RunWindow, schema: str) -> list[Outcome]:
    validator = Validator(run.run_id)
    facts = {**_sane_window(run), "person_names": person_names(warehouse)}
    outcomes = []
    for suite in suites("marts"):
        sql = (
            suite.query.format(schema=schema) if suite.query else text_values_sql(warehouse, schema)
        )
        expectations = suite.expectations(validator.gx, facts)
        outcomes.append(validator.query(warehouse, suite.name, sql, [], expectations, suite.table))
    collapse = collapse_outcome(validator, warehouse, run, schema)
    if collapse is not None:
        outcomes.append(collapse)
    validator.finish()
    record_outcomes(warehouse, run, "marts", outcomes)
    raise_on_failure("marts gate", outcomes)
    return outcomes
