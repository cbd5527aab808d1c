"""A batch bigger than one DataFrame may hold is validated in parts, with the same verdict
and counts as in one piece: duplicates split by the parts' boundary are still found."""

from __future__ import annotations

import pytest

from churnhouse.gates.runner import Validator
from churnhouse.warehouse import open_warehouse


@pytest.fixture
def batch(tmp_path):
    warehouse = open_warehouse(str(tmp_path / "warehouse.duckdb"))
    with warehouse.transaction() as tx:
        tx.execute("CREATE TABLE calls (message_id TEXT, kind TEXT, _run_id TEXT)")
        tx.execute(
            "INSERT INTO calls SELECT 'm' || i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'track' END, "
            "'night' FROM range(40) AS r(i)"
        )
        tx.execute("INSERT INTO calls VALUES ('m3', 'page', 'night'), ('m11', 'page', 'night')")
    return warehouse


def validate(warehouse, monkeypatch, chunk_rows: int):
    monkeypatch.setenv("CHURN_GATE_CHUNK_ROWS", str(chunk_rows))
    validator = Validator("parts-test")
    e = validator.gx.expectations
    expectations = [
        e.ExpectColumnValuesToBeUnique(column="message_id"),
        e.ExpectColumnValuesToNotBeNull(column="kind"),
    ]
    sql = "SELECT message_id, kind FROM calls WHERE _run_id = ?"
    return validator.query(warehouse, "calls", sql, ["night"], expectations, "calls")


def test_parts_give_the_verdict_and_counts_of_one_piece(batch, monkeypatch):
    whole = validate(batch, monkeypatch, chunk_rows=1_000)
    in_parts = validate(batch, monkeypatch, chunk_rows=5)  # 42 rows: 9 parts

    assert not whole.success and not in_parts.success
    assert in_parts.evaluated == whole.evaluated == 2
    counts = {f.expectation: f.unexpected_count for f in in_parts.failures}
    assert counts == {f.expectation: f.unexpected_count for f in whole.failures}
    assert counts == {
        "expect_column_values_to_be_unique": 4,  # m3 and m11, twice each
        "expect_column_values_to_not_be_null": 6,  # i = 0, 7, ..., 35
    }


def test_timestamps_out_of_range_are_found_whatever_their_precision(tmp_path, monkeypatch):
    """DuckDB hands timestamps over in microseconds; the gate turns them into nanoseconds
    for GE's vectorised check, except a column holding a value nanoseconds cannot (9999)."""
    from datetime import datetime

    from churnhouse.gates.data_docs import data_docs_dir

    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    warehouse = open_warehouse(str(tmp_path / "warehouse.duckdb"))
    with warehouse.transaction() as tx:
        tx.execute("CREATE TABLE calls (seen TIMESTAMP, seen_tz TIMESTAMPTZ, far TIMESTAMP)")
        tx.execute(
            "INSERT INTO calls SELECT TIMESTAMP '2025-01-01' + to_hours(i), "
            "TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_hours(i), TIMESTAMP '2025-01-01' "
            "FROM range(30) AS r(i)"
        )
        tx.execute(
            "INSERT INTO calls VALUES ('1990-05-01', '1990-05-01 00:00:00+00', '9999-12-31'), "
            "('2031-01-01', '2031-01-01 00:00:00+00', '2025-01-01')"
        )

    def validate(chunk_rows: int):
        monkeypatch.setenv("CHURN_GATE_CHUNK_ROWS", str(chunk_rows))
        validator = Validator("times-test")
        between = validator.gx.expectations.ExpectColumnValuesToBeBetween
        window = {"min_value": datetime(2000, 1, 1), "max_value": datetime(2030, 1, 1)}
        expectations = [between(column=c, **window) for c in ("seen", "far")]
        expectations.append(
            between(
                column="seen_tz",
                min_value=datetime.fromisoformat("2000-01-01T00:00:00+00:00"),
                max_value=datetime.fromisoformat("2030-01-01T00:00:00+00:00"),
            )
        )
        outcome = validator.query(
            warehouse, "times", "SELECT seen, seen_tz, far FROM calls", [], expectations, "calls"
        )
        validator.finish()  # the gate's Data Docs pages, every part's among them
        return outcome

    for outcome in (validate(1_000), validate(8)):
        counts = {f.column: f.unexpected_count for f in outcome.failures}
        assert counts == {"seen": 2, "seen_tz": 2, "far": 1}
    pages = list((data_docs_dir() / "validations").rglob("*.html"))
    assert any("times_part_4_of_4" in str(page) for page in pages), pages
