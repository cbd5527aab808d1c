"""The hand-written company (tests/dbt/company.py) through dbt: the published numbers
equal the ones worked out by hand from `docs/metrics.md`, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from company import AS_OF, EXPECTED_ALL, EXPECTED_CHURNS, MRR_CLOSE, build_company, query

from churnhouse.transform import build

pytestmark = pytest.mark.slow  # each builds a company with dbt


MONTHLY_COLUMNS = (
    "customers_start, new_customers, reactivated_customers, churned_customers, customers_end, "
    "mrr_start, new_mrr, reactivation_mrr, expansion_mrr, contraction_mrr, churned_mrr, mrr_end"
)

pytestmark = pytest.mark.slow


def expected_rates(month: str) -> tuple:
    """Rates from the exact (unrounded) sums, as the spec asks."""
    start, *_ = EXPECTED_ALL[month]
    churned = EXPECTED_ALL[month][3]
    previous = f"{int(month[:4]) - (month[5:7] == '01')}-{(int(month[5:7]) - 2) % 12 + 1:02d}-01"
    mrr_start = MRR_CLOSE[previous]
    lost = {
        "2024-03-01": Decimal("130"),
        "2024-04-01": Decimal("200") + Decimal("7"),
        "2024-05-01": Decimal("91") + Decimal("100"),
    }.get(month, Decimal(0))
    expansion = {"2024-02-01": 100, "2024-04-01": 50, "2024-05-01": 20}.get(month, 0)
    if not start:
        return None, None, None
    gross = float(lost / mrr_start)
    nrr = float((mrr_start + expansion - lost) / mrr_start)
    return churned / start, gross, nrr


def assert_churn_monthly_totals(url: str) -> None:
    rows = query(
        url,
        f"SELECT month, {MONTHLY_COLUMNS}, logo_churn_rate, gross_revenue_churn_rate, "
        "net_revenue_retention FROM analytics.churn_monthly WHERE segment = 'all' AND region = 'all' "
        "ORDER BY month",
    )
    assert [str(row[0]) for row in rows] == list(EXPECTED_ALL)
    for row in rows:
        month = str(row[0])
        assert tuple(row[1:13]) == EXPECTED_ALL[month], month
        logo, gross, nrr = expected_rates(month)
        assert (
            row[13] == pytest.approx(logo, rel=1e-12, abs=0)
            if logo is not None
            else row[13] is None
        )
        assert row[14] == pytest.approx(gross, rel=1e-12) if gross is not None else row[14] is None
        assert row[15] == pytest.approx(nrr, rel=1e-12) if nrr is not None else row[15] is None


def assert_churn_monthly_cuts(url: str) -> None:
    def cut(month: str, segment: str, region: str) -> tuple:
        rows = query(
            url,
            f"SELECT {MONTHLY_COLUMNS} FROM analytics.churn_monthly "
            f"WHERE month = DATE '{month}' AND segment = '{segment}' AND region = '{region}'",
        )
        assert len(rows) == 1, (month, segment, region)
        return tuple(rows[0])

    d = Decimal
    # March is cut by the state at the close of February: acc_01 still smb (changed 15 Mar).
    assert cut("2024-03-01", "smb", "na") == (
        2,
        0,
        0,
        1,
        1,
        d("180.00"),
        d("0.00"),
        d("0.00"),
        d("0.00"),
        d("0.00"),
        d("80.00"),
        d("100.00"),
    )
    # April: acc_01 is mid_market now (upgrade +50) beside acc_07's involuntary churn.
    assert cut("2024-04-01", "mid_market", "na") == (
        2,
        0,
        0,
        1,
        1,
        d("300.00"),
        d("0.00"),
        d("0.00"),
        d("50.00"),
        d("0.00"),
        d("200.00"),
        d("150.00"),
    )
    # The unmatched biweekly customer: 20 USD / 2 weeks = 43.333333333333 a month.
    assert cut("2024-06-01", "unknown", "unknown") == (
        1,
        0,
        0,
        0,
        1,
        d("43.33"),
        d("0.00"),
        d("0.00"),
        d("0.00"),
        d("0.00"),
        d("0.00"),
        d("43.33"),
    )
    # acc_06's account was deleted in March: its last state still cuts it.
    assert cut("2024-04-01", "smb", "latam")[:5] == (0, 0, 0, 0, 0)
    every_month_sums = query(
        url,
        "SELECT month, sum(customers_end), sum(churned_customers) FROM analytics.churn_monthly "
        "WHERE segment <> 'all' GROUP BY month ORDER BY month",
    )
    assert [(str(m), int(e), int(c)) for m, e, c in every_month_sums] == [
        (month, values[4], values[3]) for month, values in EXPECTED_ALL.items()
    ]


def assert_churn_events(url: str) -> None:
    rows = query(
        url,
        "SELECT customer_key, crm_account_id, billing_customer_id, churned_at, cancel_requested_at, "
        "churn_type, mrr_lost, tenure_days, reason_category, archetype, is_influenceable, "
        "last_active_at, nps_last FROM analytics.churn_events ORDER BY churned_at",
    )
    got = {
        key: (
            str(churned),
            str(requested),
            kind,
            lost,
            tenure,
            category,
            archetype,
            influenceable,
            None if last is None else str(last),
        )
        for key, _, _, churned, requested, kind, lost, tenure, category, archetype, influenceable, last, _ in rows
    }
    assert got == EXPECTED_CHURNS
    # nps_last: the latest score submitted before the churn; acc_03's 7 of 3 May came after.
    assert {row[0]: row[12] for row in rows} == {key: None for key in EXPECTED_CHURNS} | {
        "acc_03": 8
    }
    ids = {row[0]: (row[1], row[2]) for row in rows}
    assert ids["acc_07"] == ("acc_07", "cus_07")
    # Three churns in March, but churned_customers for March is 2: acc_10 started and
    # stopped inside March and is in none of its counts.
    assert sum(1 for row in rows if row[3].month == 3) == 3


def assert_churn_reasons(url: str) -> None:
    rows = query(
        url,
        "SELECT customer_key, churned_at, source, raw_value, category, is_primary "
        "FROM analytics.churn_reasons ORDER BY customer_key, stated_at",
    )
    as_text = [(k, None if c is None else str(c), s, v, cat, p) for k, c, s, v, cat, p in rows]
    assert as_text == [
        ("acc_01", None, "survey", "too_expensive", "price", False),  # saved: no churn
        ("acc_03", "2024-05-01 00:00:00", "survey", None, "price", True),  # 价格/太贵
        ("acc_03", "2024-05-01 00:00:00", "billing", "too_expensive", "price", False),
        ("acc_06", "2024-03-10 08:00:00", "survey", None, "product_quality", True),
        ("acc_06", "2024-03-10 08:00:00", "billing", "missing_features", "product_fit", False),
        ("acc_08", None, "billing", "unused", "unused", False),  # a second sub; no churn
        ("acc_09", None, "crm", "complaint", "product_quality", False),  # > 90 days before
        ("acc_09", "2024-03-01 00:00:00", "crm", "complaint", "service", True),
        ("acc_10", "2024-03-20 00:00:00", "survey", "too_expensive", "price", False),
        ("acc_10", "2024-03-20 00:00:00", "survey", "switched_service", "competitor", True),
    ]


def assert_dim_customers(url: str) -> None:
    rows = query(
        url,
        "SELECT customer_key, crm_account_id, billing_customer_ids, identity_rule, segment, "
        "current_mrr, status, first_paid_date FROM analytics.dim_customers ORDER BY customer_key",
    )
    got = {row[0]: row[1:] for row in rows}
    assert set(got) == {
        "acc_01",
        "acc_02",
        "acc_03",
        "acc_04",
        "acc_06",
        "acc_07",
        "acc_08",
        "acc_09",
        "acc_10",
        "acc_12",
        "acc_14",
        "cus_05",
        "cus_11",
    }
    assert got["acc_14"][:3] == ("acc_14", "cus_14a, cus_14b", 1)
    assert [got[k][2] for k in ("acc_01", "acc_02", "acc_03", "acc_04")] == [1, 2, 3, 4]
    assert got["cus_05"][0] is None and got["cus_05"][5] == "never_active"
    assert got["acc_01"][3:6] == ("mid_market", Decimal("150.00"), "active")
    assert got["acc_09"][4:6] == (Decimal("80.00"), "active")
    assert got["acc_03"][4:6] == (Decimal("0.00"), "churned")
    assert got["acc_04"][6] == date(2024, 1, 24)
    total = sum(row[5] for row in rows)
    assert total == Decimal("1331.83")  # = churn_monthly's June mrr_end (as_of is 1 Jul)


def assert_fct_customer_mrr_monthly(url: str) -> None:
    rows = query(
        url,
        "SELECT customer_key, count(*), sum(new_mrr), sum(churned_mrr) "
        "FROM analytics.fct_customer_mrr_monthly GROUP BY customer_key ORDER BY customer_key",
    )
    counts = {key: n for key, n, _, _ in rows}
    # Every new and churned dollar of churn_monthly's totals is some customer's row
    # (here no customer's amount has a half cent, so the cent sums agree exactly).
    assert sum(new for _, _, new, _ in rows) == sum(v[6] for v in EXPECTED_ALL.values())
    assert sum(lost for _, _, _, lost in rows) == sum(v[10] for v in EXPECTED_ALL.values())
    churned = {key: lost for key, _, _, lost in rows if lost}
    assert churned == {key: EXPECTED_CHURNS[key][3] for key in ("acc_03", "acc_06", "acc_07",
                                                               "acc_09")}  # fmt: skip
    # Rows run from the month of the first active instant to June.
    assert counts == {
        "acc_01": 6,
        "acc_02": 5,
        "acc_03": 6,
        "acc_04": 6,
        "acc_06": 6,
        "acc_07": 5,
        "acc_08": 6,
        "acc_09": 6,
        "acc_10": 4,
        "acc_12": 1,
        "acc_14": 3,
        "cus_11": 6,
    }
    movements = query(
        url,
        "SELECT movement, count(*) FROM analytics.fct_customer_mrr_monthly "
        "WHERE customer_key = 'acc_09' GROUP BY movement ORDER BY movement",
    )
    assert dict(movements) == {
        "new": 1,
        "retained": 2,
        "churn": 1,
        "inactive": 1,
        "reactivation": 1,
    }


def assert_cancel_saves(url: str) -> None:
    rows = query(
        url,
        "SELECT response_id, customer_key, is_save, is_deflection, saved_mrr "
        "FROM analytics.cancel_saves ORDER BY response_id",
    )
    assert rows == [
        ("resp_01", "acc_01", True, True, Decimal("150.00")),  # still active on 9 Jun
        ("resp_03", "acc_03", False, False, None),
        ("resp_06", "acc_06", False, False, None),
        ("resp_10a", "acc_10", False, False, None),
        ("resp_10b", "acc_10", False, False, None),
        ("resp_99", None, False, False, None),
    ]


def assert_nps_monthly(url: str) -> None:
    rows = query(
        url,
        "SELECT month, segment, respondents, promoters, passives, detractors, nps, "
        "average_score FROM analytics.nps_monthly ORDER BY month, segment",
    )
    assert [(str(m), *rest) for m, *rest in rows] == [
        ("2024-04-01", "all", 1, 0, 1, 0, 0.0, 8.0),  # acc_03's 8 is a passive
        ("2024-04-01", "smb", 1, 0, 1, 0, 0.0, 8.0),
        ("2024-05-01", "all", 2, 0, 1, 1, -50.0, 5.0),  # acc_03's 7 and nps_99's 3
        ("2024-05-01", "smb", 1, 0, 1, 0, 0.0, 7.0),
        ("2024-05-01", "unknown", 1, 0, 0, 1, -100.0, 3.0),
        # acc_01's respondent answered 9 then 6: only the latest (6) counts, with acc_02's 10.
        ("2024-06-01", "all", 2, 1, 0, 1, 0.0, 8.0),
        ("2024-06-01", "mid_market", 2, 1, 0, 1, 0.0, 8.0),
    ]


def assert_engagement_monthly(url: str) -> None:
    rows = query(
        url,
        "SELECT customer_key, month, active_users, active_days, avg_daily_active_users, dau_mau, "
        "is_new_customer, is_activated FROM analytics.engagement_monthly "
        "WHERE customer_key IN ('acc_01', 'acc_04') AND (is_new_customer OR active_users > 0) "
        "ORDER BY customer_key, month",
    )
    got = [(k, str(m), *rest) for k, m, *rest in rows]
    # June for acc_01: u1 on 3, 4, 5 June and u2 on 4 June -> 4 user-days / 30 days, MAU 2.
    assert got[1][:4] == ("acc_01", "2024-06-01", 2, 3)
    assert got[1][4] == pytest.approx(4 / 30) and got[1][5] == pytest.approx(4 / 30 / 2)
    # acc_01 created a project 4 days after its first payment; acc_04 only during its
    # trial (before its first active instant) and 17 days after: not activated.
    assert (got[0][0], got[0][1], got[0][6], got[0][7]) == ("acc_01", "2024-01-01", True, True)
    assert [(k, m, new, activated) for k, m, *_, new, activated in got if k == "acc_04"][0] == (
        "acc_04",
        "2024-01-01",
        True,
        False,
    )


def assert_identity_unmatched(url: str) -> None:
    rows = query(
        url,
        "SELECT record_type, record_id, records FROM analytics.identity_unmatched "
        "ORDER BY record_type, record_id",
    )
    assert rows == [
        ("billing_customer", "cus_05", 1),  # free-mail domain
        ("billing_customer", "cus_11", 1),
        ("cancellation_response", "resp_99", 1),
        ("crm_account", "acc_04old", 1),
        ("crm_account", "acc_gmail", 1),
        ("crm_account", "acc_prospect", 1),
        ("nps_response", "nps_99", 1),
        ("workspace", "ws_prospect", 1),
        ("workspace", "ws_unknown", 1),
    ]
    reason = query(
        url, "SELECT reason FROM analytics.identity_unmatched WHERE record_id = 'cus_05'"
    )[0][0]
    assert "free-mail domain" in reason


def assert_company(url: str) -> None:
    assert_churn_monthly_totals(url)
    assert_churn_monthly_cuts(url)
    assert_churn_events(url)
    assert_churn_reasons(url)
    assert_dim_customers(url)
    assert_fct_customer_mrr_monthly(url)
    assert_cancel_saves(url)
    assert_nps_monthly(url)
    assert_engagement_monthly(url)
    assert_identity_unmatched(url)


def test_churn_monthly_totals_match_the_hand_computed_months(built_duckdb):
    assert_churn_monthly_totals(built_duckdb)


def test_churn_monthly_is_cut_by_segment_and_region_at_the_previous_close(built_duckdb):
    assert_churn_monthly_cuts(built_duckdb)


def test_churn_events_carry_type_reason_and_archetype(built_duckdb):
    assert_churn_events(built_duckdb)


def test_churn_reasons_keep_every_statement_and_mark_the_primary(built_duckdb):
    assert_churn_reasons(built_duckdb)


def test_dim_customers_ties_billing_customers_to_companies(built_duckdb):
    assert_dim_customers(built_duckdb)


def test_fct_customer_mrr_monthly_has_one_row_per_customer_month(built_duckdb):
    assert_fct_customer_mrr_monthly(built_duckdb)


def test_cancel_saves_flag_deflections(built_duckdb):
    assert_cancel_saves(built_duckdb)


def test_nps_monthly_counts_each_respondents_latest_answer(built_duckdb):
    assert_nps_monthly(built_duckdb)


def test_engagement_monthly_has_dau_mau_and_activation(built_duckdb):
    assert_engagement_monthly(built_duckdb)


def test_identity_unmatched_lists_every_record_tied_to_no_customer(built_duckdb):
    assert_identity_unmatched(built_duckdb)


def test_the_duckdb_file_is_free_for_other_processes_after_the_build(built_duckdb):
    import subprocess
    import sys

    code = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
        "print(con.execute('SELECT count(*) FROM analytics.churn_events').fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, built_duckdb], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "5"


@pytest.mark.postgres
def test_postgres_builds_the_same_numbers(postgres_url, capsys):
    secret = "n0t-a-real-s3cret"
    # The test server trusts local connections, so any password connects: it must
    # reach dbt and never the output.
    url_with_password = postgres_url.replace("postgres@", f"postgres:{secret}@", 1)
    build_company().write(postgres_url)
    result = build(url_with_password, AS_OF, marts_schema="analytics")
    assert result.target == "postgres"
    assert_company(postgres_url)
    out = capsys.readouterr()
    assert secret not in out.out + out.err
    assert "dbt build:" in out.out


def test_as_of_stops_the_reporting(built_duckdb):
    """Nothing after as_of: June is the last month, every churn is by 1 Jul 00:00."""
    last_month, last_churn = query(
        built_duckdb,
        "SELECT (SELECT max(month) FROM analytics.churn_monthly), "
        "(SELECT max(churned_at) FROM analytics.churn_events)",
    )[0]
    assert last_month == date(2024, 6, 1)
    assert last_churn <= datetime(2024, 7, 1)


def test_docs_generate_describes_every_mart_and_column(built_duckdb, tmp_path):
    import json

    from churnhouse.transform import docs

    index = docs(built_duckdb, tmp_path / "docs")
    assert index.exists()
    manifest = json.loads((tmp_path / "docs" / "manifest.json").read_text())
    catalog = json.loads((tmp_path / "docs" / "catalog.json").read_text())
    marts = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
    }
    assert len(marts) == 17
    undescribed = [
        f"{name}.{column}" if column else name
        for name, node in marts.items()
        for column, description in [(None, node["description"])]
        + [(c, v["description"]) for c, v in node["columns"].items()]
        if not description.strip()
    ]
    assert undescribed == []
    built = {node["metadata"]["name"]: node for node in catalog["nodes"].values()}
    for name, node in marts.items():
        assert set(built[name]["columns"]) == set(node["columns"]), f"{name}: documented = built"
    exposures = [e["name"] for e in manifest["exposures"].values()]
    assert exposures, "the BI consumers are declared"


@pytest.mark.parametrize(
    ("relative", "right", "wrong", "unit_test"),
    [
        (
            "models/intermediate/int_nps_responses_resolved.sql",
            "when responses.score >= 9 then 'promoter'",
            "when responses.score >= 8 then 'promoter'",
            "nps_classes_cover_every_score_0_to_10",
        ),
        (
            "models/marts/cancel_saves.sql",
            "{{ dbt.dateadd('day', 30, 'submitted_at') }} as deflection_checked_at",
            "{{ dbt.dateadd('day', 31, 'submitted_at') }} as deflection_checked_at",
            "deflection_is_decided_exactly_30_days_after_submission",
        ),
        (
            "models/intermediate/int_customer_mrr_months_classified.sql",
            "movements.mrr_start_usd > 0 as is_active_at_start",
            "movements.mrr_start_usd >= 0 as is_active_at_start",
            "each_flag_and_movement_amount",
        ),
    ],
    ids=["nps-promoter-cut-8", "deflection-31-days", "is-active-at-start"],
)
def test_a_planted_mistake_fails_its_dbt_unit_test(
    built_duckdb, tmp_path, monkeypatch, relative, right, wrong, unit_test
):
    """The unit tests in the models' YAML pin the NPS classes, the deflection edge and the
    monthly flags: each mistake, planted in a copy of the project, stops the build there."""
    import shutil

    from churnhouse.config import dbt_project_dir
    from churnhouse.transform import DbtBuildError

    project = tmp_path / "dbt_project"
    shutil.copytree(dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs"))
    path = project / relative
    text = path.read_text(encoding="utf-8")
    assert text.count(right) == 1
    path.write_text(text.replace(right, wrong), encoding="utf-8")
    warehouse = tmp_path / "copy.duckdb"
    shutil.copy(built_duckdb, warehouse)
    monkeypatch.setenv("CHURN_DBT_PROJECT_DIR", str(project))
    model = Path(relative).stem
    with pytest.raises(DbtBuildError) as failure:
        build(str(warehouse), AS_OF, marts_schema="analytics", select=model, unit_tests=True)
    assert [name for name, _ in failure.value.failures] == [unit_test]


def failed_tests_after_planting(built_duckdb, tmp_path, plant: str, params, select: str):
    """Names of the dbt tests that stop a build of `select` on a copy of the built company
    after `plant` (SQL, `params`) put a bad row in it."""
    import shutil

    import duckdb

    from churnhouse.transform import DbtBuildError

    warehouse = tmp_path / "copy.duckdb"
    shutil.copy(built_duckdb, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(plant, params)
    with pytest.raises(DbtBuildError) as failure:
        build(str(warehouse), AS_OF, marts_schema="analytics", select=select)
    return [name for name, _ in failure.value.failures]


@pytest.mark.parametrize(
    "later",
    ["1 DAY", "0 DAYS"],
    ids=["a night's load against history", "a first load checked whole"],
)
def test_a_duplicate_call_in_the_latest_load_fails_the_uniqueness_test(
    built_duckdb, tmp_path, later
):
    """Uniqueness is checked for the latest load against every row held: a re-delivered
    call that slipped past the loader stops the build, naming the test. When the latest
    load is most of the table (here: the copy joins the company's one load) the test
    groups the whole table instead."""
    names = failed_tests_after_planting(
        built_duckdb,
        tmp_path,
        "INSERT INTO raw.events SELECT * REPLACE (_loaded_at + CAST(? AS INTERVAL) AS _loaded_at) "
        "FROM raw.events ORDER BY message_id LIMIT 1",
        [later],
        "source:events",
    )
    assert names == ["source_unique_since_latest_load_events_events_message_id___loaded_at"]


def test_a_call_without_id_in_the_latest_load_fails_the_not_null_test(built_duckdb, tmp_path):
    """Raw events are checked for a null message_id in the latest load only (earlier loads
    were checked their night): one that slipped past the loader stops the build, naming
    the test."""
    names = failed_tests_after_planting(
        built_duckdb,
        tmp_path,
        "INSERT INTO raw.events SELECT * REPLACE "
        "(NULL AS message_id, "
        "(SELECT max(_loaded_at) FROM raw.events) + INTERVAL 1 DAY AS _loaded_at) "
        "FROM raw.events ORDER BY message_id LIMIT 1",
        [],
        "source:events",
    )
    assert names == ["source_not_null_since_latest_load_events_events_message_id___loaded_at"]


def test_a_null_fails_the_models_one_not_null_test_naming_the_column(built_duckdb, tmp_path):
    """A model's not-null columns are checked by one test (one scan, one dbt node): an
    invoice line without its period's end stops the build, and the failing row says
    which of the four columns is null."""
    import duckdb

    lines = "raw.billing_invoice_lines"
    names = failed_tests_after_planting(
        built_duckdb,
        tmp_path,
        f"INSERT INTO {lines} SELECT * REPLACE (line_id || '_copy' AS line_id, NULL AS period_end) "
        f"FROM {lines} ORDER BY invoice_id, line_id LIMIT 1",
        [],
        "stg_billing__invoice_lines",
    )
    assert names == [
        "not_null_columns_stg_billing__invoice_lines_invoice_id__line_id__period_start__period_end"
    ]
    # dbt shortens a long test's file name to a hash; it is the model's only such test
    compiled_dir = tmp_path / "copy.duckdb.dbt" / "target" / "compiled"
    (compiled,) = compiled_dir.rglob("stg_billing__invoice_lines.yml/not_null_columns_*.sql")
    with duckdb.connect(str(tmp_path / "copy.duckdb")) as con:
        failing = con.execute(compiled.read_text()).fetchall()
        planted = con.execute(
            f"SELECT invoice_id, line_id, period_start FROM {lines} WHERE period_end IS NULL"
        ).fetchall()
    assert failing == [("period_end", *planted[0], None)]


def test_a_repeated_row_in_the_days_the_last_run_rewrote_fails_the_grain_test(
    built_duckdb, tmp_path
):
    """The daily activity's grain is checked over the days that hold the latest load's rows
    (the days its last run rewrote): a repeated user-day there stops the build."""
    daily = "intermediate.int_activity_aggregated_to_daily_users"
    names = failed_tests_after_planting(
        built_duckdb,
        tmp_path,
        f"INSERT INTO {daily} SELECT * FROM {daily} "
        f"WHERE last_loaded_at = (SELECT max(last_loaded_at) FROM {daily}) LIMIT 1",
        [],
        "int_activity_aggregated_to_daily_users",
    )
    assert names == [
        "unique_combination_int_activity_aggregated_to_daily_users_"
        "activity_date__workspace_id__user_id__last_loaded_at__activity_date"
    ]


def test_a_repeated_row_fails_the_grain_test_on_postgres(postgres_url):
    """PostgreSQL checks a grain by sorting 64-bit hashes of the rows' key columns
    (macros/uniqueness.sql), not by grouping them: the clean build passes the test, and a
    repeated user-day in the days the last run rewrote stops the next build, named."""
    import psycopg2

    from churnhouse.transform import DbtBuildError

    model = "int_activity_aggregated_to_daily_users"
    daily = f"intermediate.{model}"
    build_company().write(postgres_url)
    build(postgres_url, AS_OF, marts_schema="analytics", select=f"+{model}")
    with psycopg2.connect(postgres_url.replace("+psycopg2", "")) as con, con.cursor() as cur:
        cur.execute(
            f"INSERT INTO {daily} SELECT * FROM {daily} "
            f"WHERE last_loaded_at = (SELECT max(last_loaded_at) FROM {daily}) LIMIT 1"
        )
    with pytest.raises(DbtBuildError) as failure:
        build(postgres_url, AS_OF, marts_schema="analytics", select=model)
    assert [name for name, _ in failure.value.failures] == [
        "unique_combination_int_activity_aggregated_to_daily_users_"
        "activity_date__workspace_id__user_id__last_loaded_at__activity_date"
    ]


@pytest.mark.parametrize(
    "later",
    ["1 day", "0 days"],
    ids=["a night's load against history", "a first load checked whole"],
)
def test_a_duplicate_call_fails_the_uniqueness_test_on_postgres(postgres_url, later):
    """PostgreSQL checks a whole table by sorting 64-bit hashes of the values
    (macros/uniqueness.sql), not by grouping the values: the duplicate is still found,
    in both modes, and a clean load passes."""
    import psycopg2

    from churnhouse.transform import DbtBuildError

    build_company().write(postgres_url)
    build(postgres_url, AS_OF, marts_schema="analytics", select="source:events")
    with psycopg2.connect(postgres_url.replace("+psycopg2", "")) as con, con.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE copied AS SELECT * FROM raw.events ORDER BY message_id LIMIT 1"
        )
        cur.execute("UPDATE copied SET _loaded_at = _loaded_at + CAST(%s AS INTERVAL)", [later])
        cur.execute("INSERT INTO raw.events SELECT * FROM copied")
    with pytest.raises(DbtBuildError) as failure:
        build(postgres_url, AS_OF, marts_schema="analytics", select="source:events")
    names = [name for name, _ in failure.value.failures]
    assert names == ["source_unique_since_latest_load_events_events_message_id___loaded_at"]


def test_two_calls_without_id_fail_both_checks_on_postgres(postgres_url):
    """Nulls hash to one value on PostgreSQL: two calls without an id in a first load (one
    load: the whole table is checked) are a repeat, as `unique` counts them, and nulls, so
    both raw checks stop the build."""
    import psycopg2

    from churnhouse.transform import DbtBuildError

    build_company().write(postgres_url)
    with psycopg2.connect(postgres_url.replace("+psycopg2", "")) as con, con.cursor() as cur:
        cur.execute("UPDATE raw.events SET _loaded_at = (SELECT max(_loaded_at) FROM raw.events)")
        cur.execute(
            "CREATE TEMP TABLE copied AS SELECT * FROM raw.events ORDER BY message_id LIMIT 2"
        )
        cur.execute("UPDATE copied SET message_id = NULL")
        cur.execute("INSERT INTO raw.events SELECT * FROM copied")
    with pytest.raises(DbtBuildError) as failure:
        build(postgres_url, AS_OF, marts_schema="analytics", select="source:events")
    assert sorted(name for name, _ in failure.value.failures) == [
        "source_not_null_since_latest_load_events_events_message_id___loaded_at",
        "source_unique_since_latest_load_events_events_message_id___loaded_at",
    ]
