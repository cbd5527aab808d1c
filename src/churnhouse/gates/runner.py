"""Validate one batch with Great Expectations and say what failed.

A batch is the rows of a query: a DataFrame read out of the warehouse when GE
cannot validate the engine in SQL (DuckDB), GE's SQL data source otherwise.

A DataFrame never holds more than `CHURN_GATE_CHUNK_ROWS` rows (default 500,000):
a bigger batch (a first load, a backfill) is validated in parts split by a hash of
the column that must be unique (of every column read when none must), so that all
copies of a value meet in one part and uniqueness holds across the whole batch;
the parts' results are merged into one outcome.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field

from churnhouse.errors import PermanentError
from churnhouse.gates.data_docs import SITE_NAME, data_docs_dir, gx_context, make_offline, now
from churnhouse.warehouse import Warehouse, checked_identifier
from churnhouse.warehouse.duckdb import duckdb_memory_limit

_SAFE_PARAMETER = re.compile(r"^[A-Za-z0-9_:.+\-]{1,250}$")


class GateFailed(PermanentError):
    """At least one expectation failed; the message lists each with offending values."""


@dataclass
class Failure:
    expectation: str
    column: str | None
    unexpected_count: int | None
    sample: list

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        count = f" ({self.unexpected_count} rows)" if self.unexpected_count is not None else ""
        return f"{self.expectation}{where}{count}: e.g. {self.sample[:5]!r}"


@dataclass
class Outcome:
    suite: str
    table: str
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)


class Validator:
    """One GE context for a whole gate: suites are validated one after another, each
    validation named `run_name` (the Airflow run id) in the Data Docs."""

    def __init__(self, run_name: str) -> None:
        self.run_name = run_name
        self.started = now()
        self.gx, self.context = gx_context()
        self.results: list = []  # GE's identifiers of the validation results stored

    def finish(self, build_index: bool = True) -> None:
        """Build the Data Docs pages of this gate's validations, once, and point them at
        the vendored assets (offline). One build per gate, not per suite. The site index
        re-reads up to `CHURN_DATA_DOCS_INDEX_LIMIT` stored results (most of a build's
        time): `build_index=False` leaves it to the night's next gate."""
        if self.results:
            self.context.build_data_docs(
                site_names=[SITE_NAME], resource_identifiers=self.results, build_index=build_index
            )
        make_offline(data_docs_dir(), since=self.started)

    def frame(self, name: str, frame, expectations: list, table: str) -> Outcome:
        """Validate a pandas DataFrame."""
        source = self.context.data_sources.add_or_update_pandas(f"{name}_source")
        definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        try:
            return self._run(
                name, table, expectations, definition, {"dataframe": nanosecond_times(frame)}
            )
        finally:
            # The context would otherwise keep every validated DataFrame alive to the end.
            self.context.data_sources.delete(f"{name}_source")

    def query(
        self,
        warehouse: Warehouse,
        name: str,
        sql: str,
        params: list[str],
        expectations: list,
        table: str,
    ) -> Outcome:
        """Validate the rows of `sql` (`?` placeholders) on the warehouse."""
        if warehouse.validation_sql_url is None:
            return self._frames_in_parts(warehouse, name, sql, params, expectations, table)
        source = self.context.data_sources.add_postgres(
            f"{name}_source", connection_string=warehouse.validation_sql_url
        )
        literal = sql.replace("?", "'{}'").format(*[_checked_parameter(p) for p in params])
        # GE's query asset wants a bare SELECT; WITH queries go in a subquery.
        literal = f"SELECT * FROM ({literal.strip()}) AS gx_batch"
        asset = source.add_query_asset(name, query=literal)
        definition = asset.add_batch_definition_whole_table(name)
        return self._run(name, table, expectations, definition, None)

    def _frames_in_parts(
        self, warehouse: Warehouse, name: str, sql: str, params, expectations, table
    ) -> Outcome:
        (rows,) = warehouse.read_frame(f"SELECT count(*) FROM ({sql}) AS batch", params).iloc[0]
        parts = max(1, math.ceil(int(rows) / chunk_rows()))
        if parts == 1:
            return self.frame(name, warehouse.read_frame(sql, params), expectations, table)
        key = ", ".join(_unique_columns(expectations) or columns_checked(expectations))
        outcomes = []
        with warehouse.connection() as con:
            # One scan sorts the batch into its parts; each part is then read by itself.
            # DuckDB keeps a small share of memory meanwhile: the parts live in pandas.
            con.execute(f"SET memory_limit = '{PARTS_DUCKDB_MEMORY}'")
            try:
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE gate_parts AS "
                    f"SELECT *, hash({key}) % {parts} AS gate_part "
                    f"FROM ({sql}) AS batch ORDER BY gate_part",
                    params,
                )
                for part in range(parts):
                    frame = con.execute(
                        "SELECT * EXCLUDE (gate_part) FROM gate_parts WHERE gate_part = ?", [part]
                    ).df()
                    label = f"{name}_part_{part + 1}_of_{parts}"
                    # An expectation belongs to one suite: each part gets copies.
                    copies = [copy.copy(expectation) for expectation in expectations]
                    outcomes.append(self.frame(label, frame, copies, table))
                    del frame
            finally:  # the connection may be held for the rest of the gate
                con.execute("DROP TABLE IF EXISTS gate_parts")
                con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")
        return merged(name, outcomes)

    def _run(self, name, table, expectations, definition, batch_parameters) -> Outcome:
        from great_expectations.core.run_identifier import RunIdentifier

        gx = self.gx
        suite = self.context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        validation = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=definition, suite=suite)
        )
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[validation],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
                actions=[],  # Data Docs are built once per gate (finish)
            )
        )
        result = checkpoint.run(
            batch_parameters=batch_parameters,
            run_id=RunIdentifier(run_name=self.run_name),
        )
        self.results.extend(result.run_results)
        outcome = Outcome(name, table, result.success, 0)
        for run in result.run_results.values():
            outcome.evaluated += len(run.results)
            outcome.failures.extend(_failure(item) for item in run.results if not item.success)
        return outcome


PARTS_DUCKDB_MEMORY = "512MB"


def nanosecond_times(frame):
    """Timestamps as datetime64[ns]: GE compares only those in a vectorised way (DuckDB
    hands over microseconds, which GE checks one value at a time in Python, ~4 s per
    500,000 rows). A value beyond the nanosecond range (after 2262) keeps its column as
    it was: slower, the same verdict."""
    import pandas as pd

    for column in frame.columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit != "ns":
            target = pd.DatetimeTZDtype("ns", dtype.tz)
        elif pd.api.types.is_datetime64_dtype(dtype) and dtype != "datetime64[ns]":
            target = "datetime64[ns]"
        else:
            continue
        try:
            frame[column] = frame[column].astype(target)
        except (pd.errors.OutOfBoundsDatetime, OverflowError):
            pass
    return frame


def chunk_rows() -> int:
    """`CHURN_GATE_CHUNK_ROWS`: the most rows validated in one DataFrame."""
    return max(1, int(os.environ.get("CHURN_GATE_CHUNK_ROWS", "500000")))


def _unique_columns(expectations: list) -> list[str]:
    names = [
        expectation.configuration.kwargs.get("column")
        for expectation in expectations
        if expectation.expectation_type == "expect_column_values_to_be_unique"
    ]
    return [checked_identifier(name) for name in names[:1] if name]


def merged(name: str, parts: list[Outcome]) -> Outcome:
    """One outcome for a batch validated in parts: failures of one expectation summed."""
    outcome = Outcome(name, parts[0].table, all(part.success for part in parts), parts[0].evaluated)
    by_check: dict[tuple, Failure] = {}
    for failure in (failure for part in parts for failure in part.failures):
        check = (failure.expectation, str(failure.column))
        if check not in by_check:
            by_check[check] = Failure(failure.expectation, failure.column, None, [])
            outcome.failures.append(by_check[check])
        total = by_check[check]
        if failure.unexpected_count is not None:
            total.unexpected_count = (total.unexpected_count or 0) + failure.unexpected_count
        total.sample = (total.sample + list(failure.sample))[:5]
    return outcome


def _failure(item) -> Failure:
    config = item.expectation_config
    return Failure(
        expectation=config.type,
        column=config.kwargs.get("column") or config.kwargs.get("column_list"),
        unexpected_count=item.result.get("unexpected_count"),
        sample=list(item.result.get("partial_unexpected_list") or [])
        or [item.result.get("observed_value")],
    )


def _checked_parameter(value: str) -> str:
    if not _SAFE_PARAMETER.match(value):
        raise PermanentError(f"refusing query parameter {value!r}: unexpected characters")
    return value


def columns_checked(expectations: list) -> list[str]:
    """Only the columns the suite looks at are read (the raw JSON stays in the warehouse)."""
    names: set[str] = set()
    for expectation in expectations:
        fields = expectation.configuration.kwargs
        for key in ("column", "column_A", "column_B"):
            if fields.get(key):
                names.add(fields[key])
        names.update(fields.get("column_list") or [])
    return [checked_identifier(name) for name in sorted(names)]


def raise_on_failure(gate: str, outcomes: list[Outcome]) -> None:
    """Print one line per suite; raise GateFailed listing every failed expectation."""
    for outcome in outcomes:
        status = "ok" if outcome.success else "FAILED"
        print(
            f"{gate}: {outcome.suite} on {outcome.table}: {outcome.evaluated} checks, {status}",
            flush=True,
        )
    failed = [(o, f) for o in outcomes for f in o.failures]
    if failed:
        lines = [f"  - {o.table}: {f.describe()}" for o, f in failed]
        raise GateFailed(
            f"{gate} stopped the night ({len(failed)} failed expectation(s); "
            f"Data Docs in {data_docs_dir()}):\n" + "\n".join(lines)
        )
