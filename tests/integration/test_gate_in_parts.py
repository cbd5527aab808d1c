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
