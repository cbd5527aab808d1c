"""The bench's PostgreSQL lines (issue 14): a simulated company ingested and built on a fresh
PostgreSQL database, timed, its marts equal to the truth; an unreachable server is a skip
with a reason, not a crash. The binary COPY that stages the rows keeps every value."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from churnhouse.devkit.bench_postgres import (
    PostgresBenchResult,
    PostgresBenchSkipped,
    bench_postgres,
)
from churnhouse.devkit.simulator import bundle_as_of, simulate
from churnhouse.warehouse import open_warehouse


@pytest.mark.slow
def test_bench_postgres_times_ingest_and_dbt_and_the_marts_equal_the_truth(
    tmp_path, postgres_url, monkeypatch
):
    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    bundle = tmp_path / "bundle"
    simulate(out=bundle, customers=40, months=8, start="2024-01", seed=5, workers=1)

    result = bench_postgres(bundle, bundle_as_of(bundle), postgres_url, keep=True)

    assert isinstance(result, PostgresBenchResult)
    assert result.truth_problems == []
    assert result.ingest_seconds > 0 and result.dbt_seconds > 0
    assert set(result.source_seconds) == {"billing", "crm", "events", "fx", "surveys"}
    with open_warehouse(postgres_url).transaction() as tx:
        loaded = tx.fetchone("SELECT sum(rows_loaded) FROM raw._loads WHERE status = 'success'")
    assert result.rows_loaded == loaded[0] > 0
    ratio_lines = result.lines(duckdb_ingest_seconds=1.0, duckdb_dbt_seconds=1.0)
    assert ratio_lines[1].startswith("postgres / duckdb ingest = ")
    assert ratio_lines[2].startswith("postgres / duckdb dbt = ")


def test_an_unreachable_server_gives_a_one_line_reason(tmp_path):
    result = bench_postgres(
        tmp_path, dt.datetime(2025, 1, 1), "postgresql://postgres@127.0.0.1:1/x"
    )

    assert isinstance(result, PostgresBenchSkipped)
    assert "127.0.0.1:1" in result.reason and "\n" not in result.reason
    assert result.lines() == [f"postgres lines skipped: {result.reason}"]


def test_binary_copy_keeps_every_type_null_and_sliced_batch(postgres_url):
    table = pa.table(
        {
            "s": pa.array(["a", None, 'héllo, "x"\n\t\\', ""], pa.string()),
            "i": pa.array([1, None, -5, 2**40], pa.int64()),
            "j": pa.array([1, 2, None, -3], pa.int32()),
            "b": pa.array([True, False, None, True]),
            "f": pa.array([1.5, None, -0.25, 1e300]),
            "ts": pa.array(
                [
                    dt.datetime(2024, 1, 2, 3, 4, 5, 6),
                    None,
                    dt.datetime(1969, 12, 31, 23, 59, 59),
                    dt.datetime(2000, 1, 1),
                ],
                pa.timestamp("us"),
            ),
            "d": pa.array(
                [dt.date(2024, 2, 29), None, dt.date(1999, 12, 31), dt.date(1970, 1, 1)],
                pa.date32(),
            ),
        }
    )
    ddl = "s TEXT, i BIGINT, j INTEGER, b BOOLEAN, f DOUBLE PRECISION, ts TIMESTAMP, d DATE"
    sliced = pa.concat_tables([table.slice(0, 1), table.slice(1)])  # batches with offsets

    with open_warehouse(postgres_url).transaction() as tx:
        tx.stage_arrow("_stage_types", ddl, sliced)
        rows = tx.fetchall("SELECT s, i, j, b, f, ts, d FROM _stage_types ORDER BY j NULLS LAST")

    expected = sorted(
        zip(*(column.to_pylist() for column in table.columns), strict=True),
        key=lambda row: (row[2] is None, row[2]),
    )
    assert rows == expected
