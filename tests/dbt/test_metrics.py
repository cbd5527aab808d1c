"""The metrics defined once (dbt semantic layer, MetricFlow) equal the published marts, on
DuckDB and PostgreSQL, through `churnhouse metrics`."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from churnhouse.cli import main
from churnhouse.warehouse import open_warehouse

HEADLINE = (
    "logo_churn_rate",
    "gross_revenue_churn_rate",
    "net_revenue_retention",
    "gross_revenue_retention",
    "mrr",
    "activation_rate",
    "nps",
    "deflection_rate",
    "saved_mrr",
)

# What each metric is in the marts, by month (the marts' own rows or their documented formula).
MARTS_SQL = """
WITH totals AS (
    SELECT month, logo_churn_rate, gross_revenue_churn_rate, net_revenue_retention,
           1 - gross_revenue_churn_rate AS gross_revenue_retention, mrr_end AS mrr
    FROM churn_monthly WHERE segment = 'all' AND region = 'all'
), activation AS (
    SELECT month,
           CAST(sum(CASE WHEN is_activated THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / nullif(sum(CASE WHEN is_new_customer THEN 1 ELSE 0 END), 0) AS activation_rate
    FROM engagement_monthly GROUP BY month
), nps AS (
    SELECT month, nps FROM nps_monthly WHERE segment = 'all'
), saves AS (
    SELECT submitted_month AS month,
           CAST(sum(CASE WHEN is_deflection THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / nullif(count(is_deflection), 0) AS deflection_rate,
           sum(CASE WHEN is_save THEN saved_mrr ELSE 0 END) AS saved_mrr
    FROM cancel_saves GROUP BY submitted_month
)
SELECT CAST(t.month AS DATE), t.logo_churn_rate, t.gross_revenue_churn_rate,
       t.net_revenue_retention, t.gross_revenue_retention, t.mrr, a.activation_rate, n.nps,
       s.deflection_rate, s.saved_mrr
FROM totals AS t
LEFT JOIN activation AS a ON a.month = t.month
LEFT JOIN nps AS n ON n.month = t.month
LEFT JOIN saves AS s ON s.month = t.month
ORDER BY 1
"""


def metrics_by_month(url: str, out: Path) -> dict[str, dict[str, float | None]]:
    code = main(
        [
            "metrics",
            "--warehouse",
            url,
            "--metrics",
            ",".join(HEADLINE),
            "--group-by",
            "metric_time__month",
            "--csv",
            str(out),
        ]
    )
    assert code == 0
    with out.open() as handle:
        return {
            row["metric_time__month"][:10]: {
                name: float(row[name]) if row[name] not in ("", None) else None for name in HEADLINE
            }
            for row in csv.DictReader(handle)
        }


def assert_equal_to_marts(queried: dict, marts_rows: list[tuple]) -> None:
    assert marts_rows, "the marts have months"
    compared = 0
    for month, *values in marts_rows:
        got = queried.get(month.isoformat(), dict.fromkeys(HEADLINE))
        for name, expected in zip(HEADLINE, values, strict=True):
            if expected is None:
                # The marts' null (no denominator, no rows) is MetricFlow's null or a 0 sum.
                assert got[name] in (None, 0.0), (month, name, got[name])
                continue
            # Money sums cent-rounded cuts: a few cents; rates from them: about 1e-6.
            tolerance = 0.05 if name in ("mrr", "saved_mrr") else 1e-6
            assert got[name] == pytest.approx(float(expected), abs=tolerance), (month, name)
            compared += 1
    assert compared >= 5 * len(marts_rows)


def test_metrics_equal_the_published_marts_on_duckdb(published_company, tmp_path):
    queried = metrics_by_month(published_company, tmp_path / "metrics.csv")
    path = open_warehouse(published_company).published_path
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET search_path = 'analytics'")
        marts_rows = con.execute(MARTS_SQL).fetchall()
    assert_equal_to_marts(queried, marts_rows)
    # The reporting months are the marts' months, and a churn month shows a real rate.
    assert set(queried) >= {month.isoformat() for month, *_ in marts_rows}
    assert any(row["logo_churn_rate"] for row in queried.values())
