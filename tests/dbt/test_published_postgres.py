"""One PostgreSQL night of the company, published: what BI tools, the metrics and the
dashboard read there is what they read on DuckDB (one dbt build for all three checks)."""

from __future__ import annotations

import pytest
import test_metrics
from company import AS_OF, build_company
from test_published_for_bi import MARTS, declared_not_nulls

from churnhouse.dashboard.data import collect
from churnhouse.publish import publish
from churnhouse.warehouse import open_warehouse

pytestmark = pytest.mark.postgres


def published_columns(url: str) -> tuple[dict, list]:
    import psycopg2

    with psycopg2.connect(url.replace("+psycopg2", "")) as con, con.cursor() as cur:
        cur.execute(
            "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'analytics' AND c.relkind = 'r'"
        )
        tables = dict(cur.fetchall())
        cur.execute(
            "SELECT c.table_name, c.column_name, c.is_nullable, "
            "col_description(format('%I.%I', c.table_schema, c.table_name)::regclass, "
            "c.ordinal_position) FROM information_schema.columns c "
            "WHERE c.table_schema = 'analytics'"
        )
        return tables, cur.fetchall()


def marts_rows(url: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(url.replace("+psycopg2", "")) as con, con.cursor() as cur:
        cur.execute("SET search_path = analytics")
        cur.execute(test_metrics.MARTS_SQL)
        return cur.fetchall()


def without_run(data: dict) -> dict:
    return {key: value for key, value in data.items() if key != "publication"}


def test_postgres_published_layer_for_bi_metrics_and_dashboard(
    postgres_url, published_company, tmp_path
):
    from churnhouse.transform import build

    build_company().write(postgres_url)
    build(postgres_url, AS_OF)
    publish(open_warehouse(postgres_url), "company-night", AS_OF)

    # BI tools: NOT NULLs and descriptions survive the schema swap.
    tables, columns = published_columns(postgres_url)
    assert set(tables) == MARTS | {"_publication", "metricflow_time_spine"}
    assert all((comment or "").strip() for comment in tables.values())
    assert [f"{t}.{c}" for t, c, _, comment in columns if not comment] == []
    not_null = {f"{t}.{c}" for t, c, nullable, _ in columns if nullable == "NO" and t in MARTS}
    assert not_null == declared_not_nulls() and "churn_monthly.month" in not_null

    # Metrics: MetricFlow on PostgreSQL equals the marts.
    queried = test_metrics.metrics_by_month(postgres_url, tmp_path / "metrics.csv")
    test_metrics.assert_equal_to_marts(queried, marts_rows(postgres_url))

    # Dashboard: the same data as from the DuckDB published file of the same company.
    on_postgres = collect(open_warehouse(postgres_url))
    assert on_postgres["publication"]["run_id"] == "company-night"
    assert without_run(on_postgres) == without_run(collect(open_warehouse(published_company)))
