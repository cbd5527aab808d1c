"""Great Expectations gates, run from Airflow tasks.

Suites are code in `expectations/` (one module per guarded table). A gate
validates each suite of its boundary on the night's batch — a DataFrame read
out of DuckDB (GE has no working DuckDB SQL path), GE's SQL data source on
PostgreSQL — records every outcome in `raw._validation_runs`, renders Data
Docs, and raises `GateFailed` listing each failed expectation with a sample of
the offending values.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

from churnhouse.config import churn_home
from churnhouse.errors import PermanentError
from churnhouse.load import RAW_SCHEMA, RunInfo
from churnhouse.warehouse import Warehouse, checked_identifier

EXPECTATIONS_DIR = Path(__file__).resolve().parents[3] / "expectations"
VALIDATION_RUNS = f"{RAW_SCHEMA}._validation_runs"
VOLUME_FLOOR = 0.5  # a night below half its usual volume fails loudly
TRAILING_DAYS = 7
# "Usual" is the median of the same weekday over the last weeks when at least two of
# them have data (B2B usage dips at weekends), else of the trailing days.
SAME_WEEKDAY_WEEKS = 4
_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9_:.+\-]{1,250}$")


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


def suite_modules(boundary: str, source: str | None = None) -> list[ModuleType]:
    """The suite modules of `expectations/` for a boundary (and a source, for raw)."""
    modules = []
    for path in sorted(EXPECTATIONS_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"churn_expectations.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if module.BOUNDARY == boundary and (source is None or module.SOURCE == source):
            modules.append(module)
    return modules


def _sane_window(run: RunInfo) -> dict:
    return {
        "earliest_sane": datetime(2000, 1, 1),
        "latest_sane": run.interval_end + timedelta(days=400),
    }


def _checked_run_id(run_id: str) -> str:
    if not _SAFE_RUN_ID.match(run_id):
        raise PermanentError(f"refusing run id {run_id!r}: unexpected characters")
    return run_id


def _gx_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    docs = data_docs_dir()
    docs.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(
        "churnhouse",
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return gx, context


def data_docs_dir() -> Path:
    """Where the Data Docs HTML lands (open index.html)."""
    return churn_home() / "data_docs"


def _batch_frame(warehouse: Warehouse, sql: str, params: list):
    with warehouse.transaction() as tx:
        if tx.kind == "duckdb":
            return tx.connection.execute(sql, params).df()
        import pandas as pd

        with tx.connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])


def _validate(
    gx, context, name: str, expectations: list, batch_definition, batch_parameters
) -> Outcome:
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["churnhouse"])],
        )
    )
    result = checkpoint.run(batch_parameters=batch_parameters)
    outcome = Outcome(name, "", result.success, 0)
    for validation in result.run_results.values():
        outcome.evaluated += len(validation.results)
        for item in validation.results:
            if item.success:
                continue
            config = item.expectation_config
            outcome.failures.append(
                Failure(
                    expectation=config.type,
                    column=config.kwargs.get("column") or config.kwargs.get("column_list"),
                    unexpected_count=item.result.get("unexpected_count"),
                    sample=list(item.result.get("partial_unexpected_list") or [])
                    or [item.result.get("observed_value")],
                )
            )
    return outcome


def _validate_query(
    gx, context, warehouse: Warehouse, name: str, sql: str, params: list, expectations: list
) -> Outcome:
    """Validate the rows of `sql`: a DataFrame out of DuckDB, GE's SQL data source on PostgreSQL."""
    if warehouse.kind == "duckdb":
        frame = _batch_frame(warehouse, sql, params)
        source = context.data_sources.add_or_update_pandas(f"{name}_source")
        definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        return _validate(gx, context, name, expectations, definition, {"dataframe": frame})
    source = context.data_sources.add_postgres(
        f"{name}_source", connection_string=_sqlalchemy_url(warehouse.url)
    )
    literal = sql.replace("?", "'{}'").format(*[_checked_run_id(p) for p in params])
    # GE's query asset wants a bare SELECT; WITH queries go in a subquery.
    literal = f"SELECT * FROM ({literal.strip()}) AS gx_batch"
    definition = source.add_query_asset(name, query=literal).add_batch_definition_whole_table(name)
    return _validate(gx, context, name, expectations, definition, None)


def _validate_table(
    gx, context, warehouse: Warehouse, module: ModuleType, facts: dict, where: str, params: list
) -> Outcome:
    schema, table = module.TABLE.split(".")
    qualified = f"{checked_identifier(schema)}.{checked_identifier(table)}"
    name = module.__name__.rsplit(".", 1)[-1]
    expectations = module.expectations(gx, facts)
    columns = ", ".join(_columns_checked(expectations))
    sql = f"SELECT {columns} FROM {qualified} WHERE {where}"
    outcome = _validate_query(gx, context, warehouse, name, sql, params, expectations)
    outcome.table = module.TABLE
    return outcome


def _columns_checked(expectations: list) -> list[str]:
    """Only the columns the suite looks at are read (the raw JSON stays in the warehouse)."""
    names: set[str] = set()
    for expectation in expectations:
        fields = expectation.configuration.kwargs
        for key in ("column", "column_A", "column_B"):
            if fields.get(key):
                names.add(fields[key])
        names.update(fields.get("column_list") or [])
    return [checked_identifier(name) for name in sorted(names)]


def _sqlalchemy_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+psycopg2)?://", "postgresql+psycopg2://", url)


def _counts_back(
    warehouse: Warehouse, table: str, column: str, run: RunInfo, backs: list[int]
) -> list[int]:
    """Rows per interval-length period, `back` periods before tonight's, for each of `backs`."""
    length = run.interval_end - run.interval_start
    counts = []
    with warehouse.transaction() as tx:
        for back in backs:
            start = run.interval_start - back * length
            counts.append(
                tx.fetchone(
                    f"SELECT count(*) FROM {table} WHERE {column} >= ? AND {column} < ?",
                    [start, start + length],
                )[0]
            )
    return counts


def usual_volume(same_weekday: list[int], trailing: list[int]) -> tuple[float, str]:
    """The volume a night is held against, and in words what it was taken from."""
    weeks = [count for count in same_weekday if count > 0]
    if len(weeks) >= 2:
        return statistics.median(weeks), f"median of the same weekday over {len(weeks)} weeks"
    return statistics.median(trailing), f"median of the trailing {len(trailing)} days"


def _volume_outcome(gx, context, warehouse: Warehouse, module: ModuleType, run: RunInfo):
    """Tonight's rows against the usual volume (None when there is no history yet)."""
    column = getattr(module, "VOLUME_COLUMN", None)
    if column is None:
        return None
    schema, table = module.TABLE.split(".")
    qualified = f"{checked_identifier(schema)}.{checked_identifier(table)}"
    daily = run.interval_end - run.interval_start == timedelta(days=1)
    weekly_backs = [7 * week for week in range(1, SAME_WEEKDAY_WEEKS + 1)] if daily else []
    backs = [0, *range(1, TRAILING_DAYS + 1), *weekly_backs]
    tonight, *history = _counts_back(warehouse, qualified, checked_identifier(column), run, backs)
    usual, basis = usual_volume(history[TRAILING_DAYS:], history[:TRAILING_DAYS])
    if usual == 0:
        return None
    import pandas as pd

    frame = pd.DataFrame({"rows_tonight": [tonight], "usual_rows": [usual], "basis": [basis]})
    name = f"volume_{table}"
    data = context.data_sources.add_or_update_pandas(f"{name}_source")
    definition = data.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
    expectation = gx.expectations.ExpectColumnValuesToBeBetween(
        column="rows_tonight", min_value=int(VOLUME_FLOOR * usual)
    )
    outcome = _validate(gx, context, name, [expectation], definition, {"dataframe": frame})
    outcome.table = module.TABLE
    return outcome


def run_raw_gate(
    warehouse: Warehouse, sources: str | tuple[str, ...], run: RunInfo
) -> list[Outcome]:
    """Validate the night's batch of the sources; raise GateFailed listing every failure."""
    gx, context = _gx_context()
    facts = _sane_window(run)
    sources = (sources,) if isinstance(sources, str) else sources
    modules = [module for source in sources for module in suite_modules("raw", source)]
    outcomes = []
    for module in modules:
        outcomes.append(
            _validate_table(gx, context, warehouse, module, facts, "_run_id = ?", [run.run_id])
        )
        volume = _volume_outcome(gx, context, warehouse, module, run)
        if volume is not None:
            outcomes.append(volume)
    _record(warehouse, run, "raw", outcomes)
    _raise_on_failure(f"raw gate for {', '.join(sources)}", outcomes)
    return outcomes


def _record(warehouse: Warehouse, run: RunInfo, boundary: str, outcomes: list[Outcome]) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.transaction() as tx:
        tx.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {VALIDATION_RUNS} (run_id TEXT, boundary TEXT, "
            "suite TEXT, guarded_table TEXT, success BOOLEAN, evaluated INTEGER, failed INTEGER, "
            "details TEXT, validated_at TIMESTAMP)"
        )
        for outcome in outcomes:
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
                    json.dumps(
                        [f.describe() for f in outcome.failures], ensure_ascii=False, default=str
                    ),
                    now,
                ],
            )


def _raise_on_failure(gate: str, outcomes: list[Outcome]) -> None:
    failed = [(o, f) for o in outcomes for f in o.failures]
    for outcome in outcomes:
        status = "ok" if outcome.success else "FAILED"
        print(
            f"{gate}: {outcome.suite} on {outcome.table}: {outcome.evaluated} checks, {status}",
            flush=True,
        )
    if failed:
        lines = [f"  - {o.table}: {f.describe()}" for o, f in failed]
        raise GateFailed(
            f"{gate} stopped the night ({len(failed)} failed expectation(s); "
            f"Data Docs in {data_docs_dir()}):\n" + "\n".join(lines)
        )


def _text_values_sql(warehouse: Warehouse, schema: str) -> str:
    """Every distinct text value of every table of `schema`, as (table, column, value) rows."""
    with warehouse.transaction() as tx:
        columns = tx.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = ? "
            "AND lower(data_type) IN ('varchar', 'text', 'character varying') "
            "ORDER BY table_name, column_name",
            [schema],
        )
    parts = [
        f"SELECT DISTINCT '{checked_identifier(t)}' AS table_name, '{checked_identifier(c)}' AS "
        f"column_name, CAST({checked_identifier(c)} AS TEXT) AS value FROM {schema}.{t} "
        f"WHERE {c} IS NOT NULL"
        for t, c in columns
    ]
    return (
        " UNION ALL ".join(parts)
        or "SELECT 'none' AS table_name, 'none' AS column_name, 'none' AS value"
    )


def _person_names(warehouse: Warehouse) -> list[str]:
    with warehouse.transaction() as tx:
        rows = tx.fetchall(
            f"SELECT full_name FROM {RAW_SCHEMA}.crm_contacts WHERE full_name IS NOT NULL "
            f"UNION SELECT full_name FROM {RAW_SCHEMA}.crm_users WHERE full_name IS NOT NULL"
        )
    return sorted(name for (name,) in rows if len(name.strip()) >= 3)


def run_marts_gate(
    warehouse: Warehouse, run: RunInfo, schema: str = "analytics_audit"
) -> list[Outcome]:
    """Validate the night's marts in the audit schema before they are published."""
    gx, context = _gx_context()
    facts = {**_sane_window(run), "person_names": _person_names(warehouse)}
    outcomes = []
    for module in suite_modules("marts"):
        name = module.__name__.rsplit(".", 1)[-1]
        sql = (
            module.QUERY.format(schema=schema)
            if module.QUERY
            else _text_values_sql(warehouse, schema)
        )
        outcome = _validate_query(
            gx, context, warehouse, name, sql, [], module.expectations(gx, facts)
        )
        outcome.table = module.TABLE
        outcomes.append(outcome)
    _record(warehouse, run, "marts", outcomes)
    _raise_on_failure("marts gate", outcomes)
    return outcomes
