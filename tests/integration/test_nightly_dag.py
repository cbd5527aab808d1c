"""The simulated company through the real DAG (`airflow dags test`) into DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from factories import table_fingerprint, track, write_mini_bundle, write_partition

from churnhouse.runner import run_day
from churnhouse.sources import source_names
from churnhouse.warehouse import open_warehouse

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

SIMULATION = {"customers": 25, "months": 3, "start": "2024-01", "seed": 5}
SIMULATED_LAST_DAY = date(2024, 3, 31)  # as_of = 2024-04-01 00:00 UTC
LAST_DAY = date(2024, 9, 30)  # the mini bundle's last day
RAW_TABLES = (
    "raw.crm_accounts",
    "raw.crm_contacts",
    "raw.crm_activities",
    "raw.crm_users",
    "raw.billing_customers",
    "raw.billing_subscriptions",
    "raw.billing_invoices",
    "raw.billing_invoice_lines",
    "raw.billing_charges",
    "raw.fx_rates",
    "raw.events",
    "raw.survey_cancellations",
    "raw.survey_nps",
    "raw._quarantine",
)

# Quarantine reasons (prefix) → the simulator's bad_input key for that kind of mess.
REASON_TO_TRUTH = {
    ("events", "invalid JSON"): "events_invalid_json",
    ("events", "missing required key"): "events_missing_key",
    ("events", "unparseable timestamp"): "events_bad_timestamp",
    ("surveys", "unparseable submitted_at", "cancellation_response"): "survey_bad_date",
    ("surveys", "unparseable submitted_at", "nps_response"): "nps_bad_date",
    ("surveys", "score not an integer"): "nps_score_out_of_range",
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_mini_bundle(tmp_path_factory.mktemp("mini_bundle"))


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    from churnhouse.devkit.simulator import simulate

    out = tmp_path_factory.mktemp("simulated")
    simulate(out=out, **SIMULATION)
    return out


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("airflow")


def run_night(day: date, warehouse: str, bundle_dir: Path, home: Path, airflow_home: Path) -> None:
    """The real DAG for one day (`airflow dags test`), asserting Airflow's exit code."""
    env = {
        "CHURN_BUNDLE": str(bundle_dir),
        "CHURN_WAREHOUSE": warehouse,
        "CHURN_HOME": str(home),
        "CHURN_AIRFLOW_HOME": str(airflow_home),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        code = run_day(day, env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert code == 0, f"airflow dags test failed for {day}; see {home / 'logs'}"


@pytest.fixture(scope="module")
def first_night(tmp_path_factory, airflow_home, bundle) -> str:
    """One night on an empty DuckDB warehouse: the whole history up to its end."""
    folder = tmp_path_factory.mktemp("first_night")
    warehouse = str(folder / "warehouse.duckdb")
    run_night(LAST_DAY, warehouse, bundle, folder / "home", airflow_home)
    return warehouse


def raw_fingerprints(url: str) -> dict[str, tuple[int, int]]:
    with open_warehouse(url).transaction() as tx:
        return {table: table_fingerprint(tx, table) for table in RAW_TABLES}


def quarantine_counts(url: str) -> dict[str, int]:
    with open_warehouse(url).transaction() as tx:
        rows = tx.fetchall("SELECT source, object_kind, reason FROM raw._quarantine")
    counts: dict[str, int] = {}
    for source, kind, reason in rows:
        for key, truth_key in REASON_TO_TRUTH.items():
            if key[0] == source and reason.startswith(key[1]) and (len(key) == 2 or key[2] == kind):
                counts[truth_key] = counts.get(truth_key, 0) + 1
    return counts


def truth_bad_input(bundle: Path) -> dict[str, int]:
    injected = json.loads((bundle / "truth" / "bad_input.json").read_text())
    return {key: injected[key] for key in set(REASON_TO_TRUTH.values()) if injected.get(key)}


def test_first_night_into_duckdb_lands_every_source(first_night):
    counts = {table: rows for table, (rows, _) in raw_fingerprints(first_night).items()}
    assert counts["raw.crm_accounts"] == 10
    assert (counts["raw.billing_invoices"], counts["raw.billing_invoice_lines"]) == (250, 250)
    assert counts["raw.events"] == 30 * 40, "the re-delivered event collapsed"
    assert counts["raw.survey_nps"] == 2 and counts["raw.survey_cancellations"] == 2
    assert counts["raw._quarantine"] == 3 + 1 + 1, "3 billing lines, 1 event line, 1 NPS row"
    with open_warehouse(first_night).transaction() as tx:
        loads = tx.fetchall("SELECT source, status FROM raw._loads ORDER BY source")
        gates = tx.fetchone(
            "SELECT count(*), min(CAST(success AS INTEGER)) FROM raw._validation_runs"
        )
    assert loads == [(s, "success") for s in source_names()]
    assert source_names() == ("billing", "crm", "events", "fx", "surveys")
    assert gates[0] >= 5 and gates[1] == 1, "every raw suite ran and passed"


def test_nightly_runs_equal_one_first_run_and_a_rerun_changes_nothing(
    first_night, tmp_path, airflow_home, bundle
):
    nightly = str(tmp_path / "nightly.duckdb")
    for day in (LAST_DAY - timedelta(days=1), LAST_DAY):
        run_night(day, nightly, bundle, tmp_path / "home", airflow_home)
    assert raw_fingerprints(nightly) == raw_fingerprints(first_night)
    run_night(LAST_DAY, nightly, bundle, tmp_path / "home", airflow_home)
    assert raw_fingerprints(nightly) == raw_fingerprints(first_night)
    nightly_marts, first_marts = (
        published_fingerprints(nightly),
        published_fingerprints(first_night),
    )
    assert nightly_marts.pop("_publication") != first_marts.pop("_publication"), "other runs"
    assert nightly_marts == first_marts, "the same published marts, night by night or at once"


@pytest.mark.postgres
def test_first_night_into_postgres_equals_duckdb(
    first_night, tmp_path, airflow_home, bundle, postgres_url, capsys
):
    run_night(LAST_DAY, postgres_url, bundle, tmp_path / "home", airflow_home)
    duck_counts = {t: rows for t, (rows, _) in raw_fingerprints(first_night).items()}
    pg_counts = {t: rows for t, (rows, _) in raw_fingerprints(postgres_url).items()}
    assert pg_counts == duck_counts
    assert quarantine_counts(postgres_url) == quarantine_counts(first_night)
    from churnhouse.devkit import demo

    printed = {}
    for url in (first_night, postgres_url):  # the demo's summary is portable SQL
        capsys.readouterr()
        demo._print_marts(url)
        printed[url] = capsys.readouterr().out
    assert "last 6 months" in printed[postgres_url] and "top reasons" in printed[postgres_url]
    assert printed[postgres_url] == printed[first_night]


def test_the_simulated_company_quarantines_the_injected_mess_and_publishes_the_truth(
    tmp_path, airflow_home, simulated, capsys
):
    from churnhouse.devkit import demo

    warehouse = str(tmp_path / "warehouse.duckdb")
    capsys.readouterr()
    run_night(SIMULATED_LAST_DAY, warehouse, simulated, tmp_path / "home", airflow_home)
    progress = capsys.readouterr().out
    # `churnhouse run` shows one line per task, with counts and seconds.
    tasks = [line.split()[0] for line in progress.splitlines() if line.startswith("  ")]
    extracts = sorted(f"extract_{source}" for source in source_names())
    assert tasks[0] == "check_alerts_config", progress
    assert sorted(tasks[1 : len(extracts) + 1]) == extracts, progress
    assert tasks[len(extracts) + 1 :] == [
        "validate_raw",
        "build_marts",
        "validate_marts",
        "publish",
        "send_alerts",
    ]
    # 5 table suites, the events volume, each of the 5 sources' quarantined share
    assert re.search(r"validate_raw +\d+\.\ds  11 suites, \d+ checks, all passed", progress)
    assert re.search(r"build_marts .*build: .*\d+ models, \d+ seeds, .*\d+ tests", progress)
    dashboard = tmp_path / "home" / "dashboard" / "index.html"
    assert f"dashboard written: {dashboard}" in progress and dashboard.exists()
    assert quarantine_counts(warehouse) == truth_bad_input(simulated)
    demo.print_night(warehouse, simulated)  # what `make demo` prints after its night
    printed = capsys.readouterr().out
    assert "raw    11/11 suites passed" in printed and "marts  2/2 suites passed" in printed
    from churnhouse.devkit.acceptance import TRUTH_TABLES

    for table in TRUTH_TABLES:  # every mart the truth pins, equal to it
        assert f"  {table}: " in printed, table
    # issue 15's marts and issue 11's eight (acceptance_health)
    assert printed.count("in the truth, all equal") == len(TRUTH_TABLES) + 8, printed
    assert "top 5 at-risk customers" in printed and "loyalty x spend" in printed
    assert "risk_backtest, 0 closes whose 90 days have passed" in printed  # 3 months only


def test_billing_over_the_api_with_faults_and_no_secret_in_logs_or_xcom(
    first_night, tmp_path, airflow_home, bundle, monkeypatch
):
    from factories import KEY

    from churnhouse.devkit.billing_api import start_in_background

    with start_in_background(
        bundle / "billing",
        KEY,
        rate_limit_share=0.25,
        error_share=0.25,
        retry_after=0,
        fault_seed=4,
    ) as api:
        for name, value in {
            "CHURN_CRM_URL": f"sqlite:///{bundle / 'crm.sqlite'}",
            "CHURN_BILLING_URL": api.url,
            "CHURN_BILLING_API_KEY": KEY,
            "CHURN_EVENTS_URI": str(bundle / "events"),
            "CHURN_SURVEYS_URI": str(bundle / "surveys"),
            "CHURN_FX_RATES_URI": str(bundle / "fx_rates.csv"),
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("CHURN_BUNDLE", raising=False)
        warehouse = str(tmp_path / "api.duckdb")
        home = tmp_path / "home"
        monkeypatch.setenv("CHURN_HOME", str(home))
        monkeypatch.setenv("CHURN_AIRFLOW_HOME", str(airflow_home))
        assert run_day(LAST_DAY, {"CHURN_WAREHOUSE": warehouse}) == 0
        assert api.status_counts[429] + api.status_counts[500] > 0, "faults were injected"
    billing = [t for t in RAW_TABLES if t.startswith("raw.billing")]
    api_side, folder_side = raw_fingerprints(warehouse), raw_fingerprints(first_night)
    assert {t: api_side[t][0] for t in billing} == {t: folder_side[t][0] for t in billing}
    # `airflow dags test` runs the tasks in its own process: their output is the run's log.
    run_log = home / "logs" / f"churn_nightly_{LAST_DAY.isoformat()}.log"
    assert run_log.is_file(), sorted(home.rglob("*"))
    logs = run_log.read_text(errors="replace")
    assert "billing:" in logs and KEY not in logs
    # whatever Airflow keeps besides its database (config, logs) holds no key either
    kept = [p for p in airflow_home.rglob("*") if p.is_file() and not p.name.endswith(".db")]
    assert kept and not [p for p in kept if KEY in p.read_text(errors="replace")]
    import sqlite3

    with sqlite3.connect(airflow_home / "airflow.db") as db:
        xcoms = " ".join(str(row[0]) for row in db.execute("SELECT value FROM xcom"))
    assert "rows_loaded" in xcoms and KEY not in xcoms


def published_file(warehouse: str):
    """The published DuckDB file, opened read-only as a BI tool opens it."""
    import duckdb

    return duckdb.connect(str(open_warehouse(warehouse).published_path), read_only=True)


def published_run_ids(warehouse: str) -> set[str]:
    with published_file(warehouse) as con:
        return {
            row[0] for row in con.execute("SELECT run_id FROM analytics._publication").fetchall()
        }


def test_the_first_night_publishes_the_marts(first_night):
    with published_file(first_night) as con:
        tables = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'"
            ).fetchall()
        }
        months = con.execute("SELECT count(*) FROM analytics.churn_monthly").fetchone()[0]
    assert {"churn_monthly", "churn_events", "_publication"} <= tables
    assert months > 0


def published_fingerprints(warehouse: str) -> dict[str, tuple[int, int]]:
    """Rows and an order-independent checksum of every published table, read as a BI tool would."""
    with published_file(warehouse) as con:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'analytics' ORDER BY 1"
            ).fetchall()
        ]
        return {
            table: con.execute(
                f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM analytics.{table} AS t"
            ).fetchone()
            for table in tables
        }


@pytest.fixture(scope="module")
def published_yesterday(tmp_path_factory, airflow_home, bundle) -> Path:
    """A warehouse folder whose last night (the day before LAST_DAY) published its marts."""
    folder = tmp_path_factory.mktemp("published_yesterday")
    run_night(
        LAST_DAY - timedelta(days=1),
        str(folder / "warehouse.duckdb"),
        bundle,
        folder / "home",
        airflow_home,
    )
    return folder


HOSTILE_REGION = "x'; DROP TABLE analytics.churn_monthly; --"


def break_region(bundle: Path) -> None:
    """Tonight's CRM versions carry a hostile region outside the accepted values."""
    import sqlite3

    with sqlite3.connect(bundle / "crm.sqlite") as crm:
        crm.execute(
            "UPDATE accounts SET region = ?, updated_at = '2024-09-30 12:00:00'", [HOSTILE_REGION]
        )


def date_events_absurdly(bundle: Path) -> None:
    """Tonight's partition also holds events dated in year 9999 and in 1970."""
    write_partition(
        bundle / "events",
        LAST_DAY.isoformat(),
        [
            track("far-future", "9999-01-01T00:00:00Z", group_id="ws_1"),
            track("epoch", "1970-01-01T00:00:00Z", group_id="ws_1"),
        ],
        part=1,
    )


def rename_survey_columns(bundle: Path) -> None:
    """The cancellation export renamed primary_reason → reason and outcome → result."""
    path = bundle / "surveys" / "cancellation" / "2024-09.csv"
    text = path.read_text(encoding="utf-8-sig")
    header, rest = text.split("\n", 1)
    renamed = header.replace("primary_reason", "reason").replace("outcome", "result")
    path.write_text(renamed + "\n" + rest, encoding="utf-8")


def export_surveys_in_gbk(bundle: Path) -> None:
    """The NPS export arrives in GBK, not UTF-8."""
    path = bundle / "surveys" / "nps" / "2024-09.csv"
    text = (
        path.read_text(encoding="utf-8") + "nps_0009,2024-09-29T10:00:00Z,a@c3.example,7,价格太贵\n"
    )
    path.write_bytes(text.encode("gbk"))


def break_keys(bundle: Path) -> None:
    """Tonight's CRM versions lose their key (a source without a NOT NULL constraint)."""
    import sqlite3

    with sqlite3.connect(bundle / "crm.sqlite") as crm:
        ddl = crm.execute("SELECT sql FROM sqlite_master WHERE name = 'accounts'").fetchone()[0]
        ddl = ddl.replace(" NOT NULL", "").replace("PRIMARY KEY (account_id)", "CHECK (1)")
        crm.execute(ddl.replace("CREATE TABLE accounts", "CREATE TABLE unconstrained", 1))
        crm.execute("INSERT INTO unconstrained SELECT * FROM accounts")
        crm.execute("DROP TABLE accounts")
        crm.execute("ALTER TABLE unconstrained RENAME TO accounts")
        crm.execute(
            "UPDATE accounts SET account_id = NULL, updated_at = '2024-09-30 12:00:00' "
            "WHERE account_id IN ('acc_001', 'acc_002')"
        )


def drop_volume(bundle: Path) -> None:
    """Tonight's event partition holds 2 events where the week before had 40 a day."""
    for part in (bundle / "events" / f"dt={LAST_DAY.isoformat()}").glob("*.jsonl.gz"):
        part.unlink()
    write_partition(
        bundle / "events",
        LAST_DAY.isoformat(),
        [track(f"few-{i}", f"{LAST_DAY.isoformat()}T10:00:00Z", group_id="ws_1") for i in range(2)],
    )


def poison_a_mart(bundle: Path) -> None:
    """A cancellation answer that is exactly a person's name: clean raw data, a mart that
    would publish a name. Only the marts gate can see it."""
    late = bundle / "surveys" / "cancellation" / "2024-09-redelivery.csv"
    late.write_text(
        "response_id,submitted_at,email,subscription_id,primary_reason,reason_text,"
        "offer_presented,offer_accepted,outcome\n"
        f"resp_9001,{LAST_DAY.isoformat()}T09:00:00Z,li.wei@c1.example,,other,Ana Lima,,false,canceled\n",
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    ("breakage", "named_expectation"),
    [
        (break_region, "expect_column_values_to_be_in_set on region"),
        (break_keys, "expect_column_values_to_not_be_null on account_id"),
        (drop_volume, "expect_column_values_to_be_between on rows_tonight"),
        (poison_a_mart, "expect_column_values_to_not_be_in_set on value"),
        (date_events_absurdly, "expect_column_values_to_be_between on event_at"),
        (rename_survey_columns, "header lacks required column(s) primary_reason, outcome"),
        (export_surveys_in_gbk, "nps/2024-09.csv: not UTF-8"),
    ],
    ids=[
        "raw-gate-accepted-values",
        "raw-gate-null-keys",
        "raw-gate-volume-drop",
        "marts-gate-person-name",
        "raw-gate-events-year-9999",
        "renamed-survey-columns",
        "gbk-survey-export",
    ],
)
def test_a_bad_night_is_stopped_at_its_gate_and_nothing_is_published(
    breakage, named_expectation, published_yesterday, tmp_path, airflow_home, bundle
):
    import shutil

    night = tmp_path / "night"
    shutil.copytree(published_yesterday, night)
    broken = tmp_path / "broken_bundle"
    shutil.copytree(bundle, broken)
    breakage(broken)
    warehouse = str(night / "warehouse.duckdb")
    before_ids, before = published_run_ids(warehouse), published_fingerprints(warehouse)
    assert before, "yesterday published its marts"
    with pytest.raises(AssertionError, match="airflow dags test failed"):
        run_night(LAST_DAY, warehouse, broken, night / "home", airflow_home)
    log = (night / "home" / "logs" / f"churn_nightly_{LAST_DAY.isoformat()}.log").read_text()
    assert named_expectation in log
    assert published_run_ids(warehouse) == before_ids
    assert published_fingerprints(warehouse) == before, "yesterday's tables, exactly"


def test_a_rerun_of_a_refused_night_is_refused_again_until_the_source_is_fixed(
    published_yesterday, tmp_path, airflow_home, bundle
):
    """The night fails at the raw gate; the same command again fails again (the rows it
    rejected were held, and come back on the re-read); once the CRM is fixed, it publishes."""
    import shutil

    night = tmp_path / "night"
    shutil.copytree(published_yesterday, night)
    broken = tmp_path / "broken_bundle"
    shutil.copytree(bundle, broken)
    break_region(broken)
    warehouse = str(night / "warehouse.duckdb")
    before = published_fingerprints(warehouse)
    for attempt in ("first", "rerun"):
        with pytest.raises(AssertionError, match="airflow dags test failed"):
            run_night(LAST_DAY, warehouse, broken, night / "home", airflow_home)
        assert published_fingerprints(warehouse) == before, attempt
        with published_file(warehouse) as con:
            regions = {
                r[0] for r in con.execute("SELECT region FROM analytics.churn_monthly").fetchall()
            }
        assert HOSTILE_REGION not in regions
    import sqlite3

    with sqlite3.connect(broken / "crm.sqlite") as crm:  # the CRM team fixes the region
        crm.execute("UPDATE accounts SET region = 'emea', updated_at = '2024-09-30 13:00:00'")
    run_night(LAST_DAY, warehouse, broken, night / "home", airflow_home)
    assert published_fingerprints(warehouse) != before
    assert published_run_ids(warehouse) != set()


def test_an_unreadable_event_file_costs_that_file_and_the_night_publishes(
    published_yesterday, tmp_path, airflow_home, bundle
):
    """A corrupt file in yesterday's partition (re-read tonight within the look-back) is
    one quarantine row; tonight loads the rest and publishes."""
    import shutil

    night = tmp_path / "night"
    shutil.copytree(published_yesterday, night)
    broken = tmp_path / "broken_bundle"
    shutil.copytree(bundle, broken)
    yesterday = (LAST_DAY - timedelta(days=1)).isoformat()
    (broken / "events" / f"dt={yesterday}" / "part-0001.jsonl.gz").write_bytes(b"not gzip")
    warehouse = str(night / "warehouse.duckdb")
    before_ids = published_run_ids(warehouse)
    run_night(LAST_DAY, warehouse, broken, night / "home", airflow_home)
    assert published_run_ids(warehouse) != before_ids
    with open_warehouse(warehouse).transaction() as tx:
        rows = tx.fetchall(
            "SELECT location, reason FROM raw._quarantine WHERE object_kind = 'event_file'"
        )
    assert [location for location, _ in rows] == [f"dt={yesterday}/part-0001.jsonl.gz"]
    assert rows[0][1].startswith("unreadable file: ")


def published_as_of(warehouse: str):
    with published_file(warehouse) as con:
        return con.execute("SELECT as_of FROM analytics._publication").fetchone()[0]


def test_backfill_runs_each_night_resumes_and_never_rolls_back_a_newer_publication(
    tmp_path, airflow_home, bundle, capsys
):
    from churnhouse.runner import backfill

    home = tmp_path / "home"
    warehouse = str(tmp_path / "warehouse.duckdb")
    env = {
        "CHURN_BUNDLE": str(bundle),
        "CHURN_WAREHOUSE": warehouse,
        "CHURN_HOME": str(home),
        "CHURN_AIRFLOW_HOME": str(airflow_home),
    }
    first, last = LAST_DAY - timedelta(days=1), LAST_DAY
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert backfill(first, last, env) == 0
        assert published_as_of(warehouse) == datetime(2024, 10, 1)
        assert backfill(first, last, env) == 0  # resumed: nothing left to do
        out = capsys.readouterr().out
        assert f"backfill: {first} already done" in out and f"backfill: {last} already done" in out
        # An older night run again keeps the newer publication, unless forced.
        run_night(first, warehouse, bundle, home, airflow_home)
        log = (home / "logs" / f"churn_nightly_{first.isoformat()}.log").read_text()
        assert "not published: analytics holds as_of 2024-10-01 00:00, newer than run" in log
        assert published_as_of(warehouse) == datetime(2024, 10, 1)
        patch.setenv("CHURN_PUBLISH_FORCE", "1")
        run_night(first, warehouse, bundle, home, airflow_home)
        assert published_as_of(warehouse) == datetime(2024, 9, 30)
