"""`churnhouse query` reads the published tables only, and refuses anything but a read."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from churnhouse.cli import main
from churnhouse.publish import publish


@pytest.fixture
def published(warehouse):
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA analytics_audit")
        tx.execute(
            "CREATE TABLE analytics_audit.churn_monthly AS SELECT DATE '2024-03-01' AS month, "
            "'all' AS segment, CAST(12.5 AS DECIMAL(18, 2)) AS churned_mrr"
        )
    publish(warehouse, "night-1", datetime(2024, 4, 1))
    return warehouse.url


def test_a_select_prints_rows_in_each_format(published, capsys):
    assert (
        main(["query", "--warehouse", published, "--format", "json", "SELECT * FROM churn_monthly"])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == [
        {"month": "2024-03-01", "segment": "all", "churned_mrr": "12.50"}
    ]
    assert (
        main(
            [
                "query",
                "--warehouse",
                published,
                "--format",
                "csv",
                "SELECT segment FROM churn_monthly",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == "segment\nall\n"


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM churn_monthly",
        "DROP TABLE churn_monthly",
        "SELECT 1; DROP TABLE churn_monthly",
        "CREATE TABLE x AS SELECT 1",
        "COPY churn_monthly TO '/tmp/x.csv'",
    ],
    ids=["delete", "drop", "smuggled-drop", "create", "copy"],
)
def test_anything_but_a_read_is_refused_and_changes_nothing(published, capsys, sql):
    assert main(["query", "--warehouse", published, sql]) == 2
    assert "refused" in capsys.readouterr().err
    assert (
        main(
            [
                "query",
                "--warehouse",
                published,
                "--format",
                "csv",
                "SELECT count(*) AS n FROM churn_monthly",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == "n\n1\n"
