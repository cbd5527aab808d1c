"""The dashboard in a real headless Chromium: it renders offline, its charts hold the
published numbers, and the pages of tables not published yet say so."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest

from churnhouse.dashboard import write_dashboard
from churnhouse.warehouse import open_warehouse


def published_sql(url: str, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(open_warehouse(url).published_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def open_page(browser, index: Path, screenshot: Path | None = None):
    """Load the page from file:// with every network request refused; returns the page,
    the console errors, the refused requests and the seconds until the page was drawn."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def refuse(route):
        requests.append(route.request.url)
        route.abort()

    page.route("http*://**", refuse)
    started = time.monotonic()
    page.goto(index.as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    seconds = time.monotonic() - started
    if screenshot:
        page.screenshot(path=str(screenshot), full_page=True)
    return page, errors, requests, seconds


def chart_data(page, canvas_id: str) -> dict:
    return page.evaluate(
        "id => { const c = Chart.getChart(id); return {labels: c.data.labels, "
        "datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))}; }",
        canvas_id,
    )


def dataset(chart: dict, label: str) -> list:
    return next(d["data"] for d in chart["datasets"] if d["label"] == label)


def test_the_dashboard_renders_the_published_numbers_offline(published_company, browser, tmp_path):
    index = write_dashboard(open_warehouse(published_company), tmp_path / "dashboard")
    page, errors, requests, seconds = open_page(browser, index, tmp_path / "dashboard.png")
    try:
        assert errors == []
        assert requests == []  # everything it needs is in the file
        assert seconds < 2.0

        totals = published_sql(
            published_company,
            "SELECT strftime(month, '%Y-%m'), net_revenue_retention, logo_churn_rate, churned_mrr "
            "FROM analytics.churn_monthly WHERE segment = 'all' AND region = 'all' ORDER BY month",
        )
        trend = chart_data(page, "trend-chart")
        assert trend["labels"] == [month for month, *_ in totals]
        nrr = dataset(trend, "Net revenue retention %")
        logo = dataset(trend, "Logo churn rate %")
        assert nrr == [None if r[1] is None else pytest.approx(100 * r[1]) for r in totals]
        assert logo == [None if r[2] is None else pytest.approx(100 * r[2]) for r in totals]
        bridge = chart_data(page, "bridge-chart")
        assert dataset(bridge, "Churned") == [pytest.approx(-float(r[3])) for r in totals]

        kpi = page.inner_text("#kpis")
        (mrr_end,) = published_sql(
            published_company,
            "SELECT mrr_end FROM analytics.churn_monthly WHERE segment = 'all' "
            "AND region = 'all' ORDER BY month DESC LIMIT 1",
        )[0]
        assert f"${mrr_end:,.0f}" in kpi

        # A segment filter redraws the bridge from that segment's cuts.
        page.select_option("#segment-filter", "smb")
        smb = published_sql(
            published_company,
            "SELECT strftime(month, '%Y-%m'), sum(new_mrr), sum(churned_mrr) "
            "FROM analytics.churn_monthly WHERE segment = 'smb' AND region <> 'all' "
            "GROUP BY ALL ORDER BY 1",
        )
        smb_by_month = {month: (float(new), float(churned)) for month, new, churned in smb}
        bridge = chart_data(page, "bridge-chart")
        drawn_new = dict(zip(bridge["labels"], dataset(bridge, "New"), strict=True))
        assert any(new for new, _ in smb_by_month.values())
        for month, (new, _) in smb_by_month.items():
            assert drawn_new[month] == pytest.approx(new)
        assert sum(dataset(bridge, "Churned")) == pytest.approx(
            -sum(c for _, c in smb_by_month.values())
        )

        reasons = published_sql(
            published_company,
            "SELECT reason_category, count(*) FROM analytics.churn_events GROUP BY 1",
        )
        pareto = chart_data(page, "reasons-chart")
        assert dict(zip(pareto["labels"], dataset(pareto, "Churns"), strict=True)) == dict(reasons)
        assert dataset(pareto, "Cumulative share %")[-1] == pytest.approx(100)

        # The at-risk, driver, cohort and loyalty tables are published too (issue 11).
        assert page.query_selector(".not-published") is None
        high = published_sql(
            published_company,
            "SELECT count(*) FROM analytics.customer_health WHERE risk_level = 'high'",
        )[0][0]
        risk_rows = page.eval_on_selector_all(
            "#risk-table tbody tr", "rows => rows.map(r => r.innerText)"
        )
        assert sum("\thigh\t" in row for row in risk_rows) == min(high, len(risk_rows))
        assert errors == []
    finally:
        page.close()


def add_issue_11_tables(path: Path) -> None:
    """The at-risk, driver, cohort and loyalty tables with their published columns."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            CREATE OR REPLACE TABLE analytics.customer_health AS SELECT * FROM (VALUES
              ('acc_01', 'high', 'no activity for 41 days; NPS detractor'),
              ('acc_04', 'medium', 'seat use 12%'),
              ('acc_08', 'low', NULL)) AS t(customer_key, risk_level, risk_reasons);
            CREATE OR REPLACE TABLE analytics.risk_backtest AS SELECT DATE '2024-03-01' AS month,
              4 AS flagged_customers, 2 AS churned_flagged, 1 AS churned_not_flagged,
              0.5 AS precision_rate, 0.667 AS recall_rate, 3.25 AS lift,
              0.7 AS flagged_churned_mrr_share;
            CREATE OR REPLACE TABLE analytics.churn_drivers AS SELECT * FROM (VALUES
              ('all', 'price', 3, 0.5, 450.0, 1.0, 0.5, 1),
              ('all', 'service', 2, 0.33, 100.0, 1.0, 0.33, 2),
              ('2024-Q1', 'price', 1, 1.0, 50.0, 1.0, 1.0, 1))
              AS t(period, reason_category, churns, churn_share, churned_mrr,
                   influenceable_share, priority_score, priority_rank);
            CREATE OR REPLACE TABLE analytics.cohort_retention AS SELECT * FROM (VALUES
              (DATE '2024-01-01', 0, 4, 4, 1.0, 1.0),
              (DATE '2024-01-01', 1, 4, 3, 0.75, 0.9),
              (DATE '2024-02-01', 0, 2, 2, 1.0, 1.0))
              AS t(cohort_month, months_since_start, cohort_customers, customers_active,
                   logo_retention, revenue_retention);
            CREATE OR REPLACE TABLE analytics.loyalty_spend_segments AS SELECT * FROM (VALUES
              (DATE '2024-06-01', 'detractor', '>1000', 1, 1500.0, 0.5, 'executive outreach'),
              (DATE '2024-06-01', 'promoter', '<100', 3, 150.0, 0.0, 'referral'),
              (DATE '2024-05-01', 'promoter', '<100', 9, 9.0, 0.0, 'old month'))
              AS t(month, nps_class, spend_tier, customers, mrr, churn_rate_next_90d,
                   suggested_action);
            """
        )


def test_the_at_risk_driver_cohort_and_loyalty_pages_draw_their_tables(
    published_company, browser, tmp_path, monkeypatch
):
    copy = tmp_path / "published.duckdb"
    shutil.copy(open_warehouse(published_company).published_path, copy)
    add_issue_11_tables(copy)
    monkeypatch.setenv("CHURN_PUBLISHED_PATH", str(copy))
    index = write_dashboard(open_warehouse(published_company), tmp_path / "dashboard")
    page, errors, _, _ = open_page(browser, index)
    try:
        assert page.query_selector(".not-published") is None
        risk_rows = page.eval_on_selector_all(
            "#risk-table tbody tr", "rows => rows.map(r => r.innerText)"
        )
        assert len(risk_rows) == 2  # high and medium; low is not at risk
        assert risk_rows[0].startswith("acc_01\thigh\tno activity for 41 days")
        assert "lift 3.25x" in page.inner_text("#backtest-body")
        drivers = page.inner_text("#drivers-body")
        assert drivers.index("price") < drivers.index("service") and "2024-Q1" not in drivers
        cells = page.eval_on_selector_all(
            "#cohort-table td span[data-value]", "s => s.map(x => x.innerText)"
        )
        assert cells == ["100%", "75%", "100%", ""]
        grid = page.inner_text("#loyalty-grid")
        assert "executive outreach" in grid and "old month" not in grid
        assert "1 customers, $1,500" in grid
        assert errors == []
    finally:
        page.close()


def test_churnhouse_dashboard_serves_the_page_read_only(published_company, tmp_path):
    command = [
        str(Path(sys.executable).with_name("churnhouse")),
        "dashboard",
        "--warehouse",
        published_company,
        "--out",
        str(tmp_path / "site"),
        "--port",
        "0",
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("dashboard: http://127.0.0.1:"), line
        url = line.split()[1]
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
        assert 'id="churn-data"' in page and "company-night" in page
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"))
        assert refused.value.code == 501
    finally:
        server.terminate()
        server.wait(timeout=10)
