"""The published tables as a BI tool sees them: a DuckDB 1.x driver opens the published file,
and every mart keeps its column types, NOT NULL constraints and descriptions (on PostgreSQL too).
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import duckdb
import pytest
from company import AS_OF

from churnhouse.contracts import PUBLISHED_MARTS
from churnhouse.publish import publish
from churnhouse.warehouse import open_warehouse

MARTS = set(PUBLISHED_MARTS)


def declared_not_nulls() -> set[str]:
    """`table.column` of every NOT NULL the marts' dbt contracts declare."""
    import yaml

    declared = set()
    for path in (Path(__file__).resolve().parents[2] / "dbt_project/models/marts").glob("*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            for column in model.get("columns", []):
                if any(c.get("type") == "not_null" for c in column.get("constraints", [])):
                    declared.add(f"{model['name']}.{column['name']}")
    return declared


READER = textwrap.dedent(
    """
    import json, sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(json.dumps({
        "version": duckdb.__version__,
        "tables": con.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'analytics'"
        ).fetchall(),
        "columns": con.execute(
            "SELECT table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() "
            "WHERE schema_name = 'analytics' ORDER BY table_name, column_index"
        ).fetchall(),
        "mrr_end": str(con.execute(
            "SELECT sum(mrr_end) FROM analytics.churn_monthly WHERE segment = 'all'"
        ).fetchone()[0]),
    }))
    """
)


def read_with(python: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", READER, str(path)], capture_output=True, text=True)


def audit_schema(url: str) -> tuple[dict, list]:
    """Table comments and column definitions of the audit schema dbt built (the source)."""
    with duckdb.connect(url, read_only=True) as con:
        tables = dict(
            con.execute(
                "SELECT table_name, comment FROM duckdb_tables() "
                "WHERE schema_name = 'analytics_audit'"
            ).fetchall()
        )
        columns = con.execute(
            "SELECT table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() "
            "WHERE schema_name = 'analytics_audit' ORDER BY table_name, column_index"
        ).fetchall()
    return tables, [list(column) for column in columns]


def test_a_duckdb_1x_reader_opens_the_published_file_with_types_nullability_and_comments(
    published_company, duckdb_1x_python
):
    path = open_warehouse(published_company).published_path
    result = read_with(duckdb_1x_python, path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["version"].startswith("1.")

    audit_tables, audit_columns = audit_schema(published_company)
    tables = dict(seen["tables"])
    assert set(tables) == MARTS | {"_publication", "metricflow_time_spine"}
    assert all(tables[name] == audit_tables[name] and tables[name].strip() for name in MARTS)
    assert tables["_publication"].startswith("What is published")

    marts_columns = [c for c in seen["columns"] if c[0] in MARTS]
    # Same names, types, NOT NULLs and comments as dbt built them.
    assert marts_columns == [c for c in audit_columns if c[0] in MARTS]
    assert [c[:2] for c in marts_columns if not c[4]] == []  # every column is described
    not_null = [f"{c[0]}.{c[1]}" for c in marts_columns if not c[3]]
    assert set(not_null) == declared_not_nulls()
    assert {"churn_monthly.month", "churn_events.customer_key"} <= set(not_null)
    types = {f"{c[0]}.{c[1]}": c[2] for c in marts_columns}
    assert types["churn_monthly.month"] == "DATE"
    assert types["churn_monthly.mrr_end"] == "DECIMAL(38,2)"
    assert types["churn_monthly.net_revenue_retention"] == "DOUBLE"

    with duckdb.connect(published_company, read_only=True) as con:
        (expected,) = con.execute(
            "SELECT sum(mrr_end) FROM analytics_audit.churn_monthly WHERE segment = 'all'"
        ).fetchone()
    assert seen["mrr_end"] == str(expected)


def test_the_storage_version_setting_decides_who_can_read_the_file(
    published_company, duckdb_1x_python, tmp_path, monkeypatch
):
    """The default exists for the 1.x readers: DuckDB 2's own format is one they refuse."""
    latest = tmp_path / "latest.duckdb"
    monkeypatch.setenv("CHURN_PUBLISHED_PATH", str(latest))
    monkeypatch.setenv("CHURN_DUCKDB_STORAGE_VERSION", "latest")
    publish(open_warehouse(published_company), "latest-format", AS_OF)
    refused = read_with(duckdb_1x_python, latest)
    assert refused.returncode != 0
    assert "version" in refused.stderr

    monkeypatch.setenv("CHURN_DUCKDB_STORAGE_VERSION", "1.2")
    with pytest.raises(ValueError, match="CHURN_DUCKDB_STORAGE_VERSION='1.2'"):
        publish(open_warehouse(published_company), "bad-setting", AS_OF)


@pytest.fixture(scope="module")
def docs_page(published_company, tmp_path_factory):
    """`churnhouse docs` on the published company: (the page's path, what it printed)."""
    import contextlib
    import io

    from churnhouse.cli import main

    out = tmp_path_factory.mktemp("docs")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["docs", "--warehouse", published_company, "--out", str(out)]) == 0
    return out / "static_index.html", printed.getvalue()


def test_churnhouse_docs_writes_one_page_cataloged_from_the_published_marts(docs_page):
    page, printed = docs_page
    assert f"dbt docs (one file, opens offline): {page}" in printed
    catalog = json.loads(page.with_name("catalog.json").read_text())
    cataloged = {
        node["metadata"]["name"]: node
        for node in catalog["nodes"].values()
        if node["metadata"]["schema"] == "analytics"
    }
    assert set(cataloged) == MARTS | {"metricflow_time_spine"}
    untyped = [
        f"{name}.{column}"
        for name, node in cataloged.items()
        for column, spec in node["columns"].items()
        if not spec["type"]
    ]
    assert untyped == []
    assert cataloged["churn_monthly"]["columns"]["mrr_end"]["type"] == "DECIMAL(38,2)"


def test_the_docs_page_opens_from_a_file_and_shows_column_types(docs_page, browser):
    page_path, _ = docs_page
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(page_path.as_uri() + "#!/model/model.churnhouse.churn_monthly")
        page.wait_for_selector("text=net_revenue_retention", timeout=15_000)
        text = page.inner_text("body")
        # The TYPE column comes from the published file's catalog (the YAML says "text").
        assert "DECIMAL(38,2)" in text and "VARCHAR" in text
        assert "Sum of b over new customers." in text
        assert errors == []
    finally:
        page.close()
