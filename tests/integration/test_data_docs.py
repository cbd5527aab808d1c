"""Great Expectations Data Docs keep every raw and marts validation of every night, named by
the Airflow run id, and open offline (styled, with the results table) in a real browser."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

import pytest
from test_marts_gate import build

from churnhouse.contracts import RunWindow
from churnhouse.gates import data_docs_dir, run_marts_gate, run_raw_gate
from churnhouse.load import ensure_raw_tables
from churnhouse.sources import all_raw_tables
from churnhouse.warehouse import open_warehouse

NIGHTS = [
    RunWindow("scheduled__2024-03-30T02:00:00+00:00", datetime(2024, 3, 30), datetime(2024, 3, 31)),
    RunWindow("scheduled__2024-03-31T02:00:00+00:00", datetime(2024, 3, 31), datetime(2024, 4, 1)),
]


@pytest.fixture(scope="module")
def data_docs(tmp_path_factory):
    """Two nights of the raw (CRM) and marts gates on DuckDB, each in a fresh GE context."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURN_HOME", str(home))
        warehouse = open_warehouse(str(home / "w.duckdb"))
        with warehouse.transaction() as tx:
            ensure_raw_tables(tx, [t for tables in all_raw_tables().values() for t in tables])
            tx.execute("CREATE SCHEMA analytics_audit")
            tx.execute("CREATE SCHEMA seeds")
            tx.execute("CREATE TABLE seeds.zero_decimal_currencies AS SELECT 'jpy' AS currency")
        build(warehouse)
        for night in NIGHTS:
            run_raw_gate(warehouse, "crm", night)
            run_marts_gate(warehouse, night)
        yield data_docs_dir()


def test_the_index_lists_every_raw_and_marts_validation_by_run_id(data_docs):
    index = (data_docs / "index.html").read_text()
    for night in NIGHTS:
        for suite in ("raw_crm_accounts", "marts_mrr_reconciliation", "marts_no_personal_data"):
            page = next((data_docs / "validations" / suite / night.run_id).rglob("*.html"))
            assert quote(str(page.relative_to(data_docs))) in index, (suite, night.run_id)
    assert "__none__" not in index


def test_no_page_loads_anything_from_the_network(data_docs):
    pages = list(data_docs.rglob("*.html"))
    assert len(pages) >= 1 + 2 * 3  # the index and each night's three validations
    # What a page loads (scripts, stylesheets, images, CSS urls) is local; links may point out.
    fetched = re.compile(r"""(?:src=|url\(|rel="stylesheet" href=)["']?https?://""")
    online = [p.name for p in pages if fetched.search(p.read_text())]
    assert online == []


def test_the_index_opens_offline_styled_with_its_results_table(data_docs, browser):
    page = browser.new_page()
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: requests.append(r.url))

    def refuse(route):
        requests.append(route.request.url)
        route.abort()

    page.route("http*://**", refuse)
    try:
        page.goto((data_docs / "index.html").as_uri())
        page.wait_for_selector(".bootstrap-table", timeout=10_000)  # drawn by bootstrap-table
        assert page.evaluate("typeof jQuery.fn.bootstrapTable") == "function"
        # Bootstrap's stylesheet is applied: its reboot collapses table borders.
        collapse = "getComputedStyle(document.querySelector('table')).borderCollapse"
        assert page.evaluate(collapse) == "collapse"
        rows = page.inner_text(".bootstrap-table")
        assert NIGHTS[0].run_id in rows and NIGHTS[1].run_id in rows
        assert "raw_crm_accounts" in rows and "marts_no_personal_data" in rows
        assert requests == [] and errors == []
    finally:
        page.close()


def test_a_passing_raw_gate_leaves_the_index_to_the_marts_gate_and_a_failing_one_builds_it(
    tmp_path, monkeypatch
):
    """The site index is rebuilt once a night: a raw gate that passes writes its pages
    only (the marts gate lists them); one that fails, ending the night, rebuilds the index
    itself, listing the failure and the earlier night's pages."""
    from churnhouse.gates import GateFailed

    monkeypatch.setenv("CHURN_HOME", str(tmp_path))
    warehouse = open_warehouse(str(tmp_path / "w.duckdb"))
    with warehouse.transaction() as tx:
        ensure_raw_tables(tx, [t for tables in all_raw_tables().values() for t in tables])
    passing, failing = NIGHTS
    run_raw_gate(warehouse, "crm", passing)
    site = data_docs_dir()
    assert not (site / "index.html").exists()
    written = next((site / "validations" / "raw_crm_accounts" / passing.run_id).rglob("*.html"))

    with warehouse.transaction() as tx:
        tx.execute(
            "INSERT INTO raw.crm_accounts (account_id, updated_at, region, segment, _run_id) "
            "VALUES ('acc_1', TIMESTAMP '2024-03-31 10:00:00', 'mars', 'smb', ?)",
            [failing.run_id],
        )
    with pytest.raises(GateFailed, match="region"):
        run_raw_gate(warehouse, "crm", failing)
    index = (site / "index.html").read_text()
    failed = next((site / "validations" / "raw_crm_accounts" / failing.run_id).rglob("*.html"))
    for page in (written, failed):
        assert quote(str(page.relative_to(site))) in index
