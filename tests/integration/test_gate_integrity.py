"""What the raw gate rejected is never published, and a bad file costs one file.

Each case loads a small hostile input with the real loader and runs the real raw
gate, on DuckDB and on PostgreSQL. The nights through Airflow (published tables
unchanged, the next good night publishing) are in test_nightly_dag.py.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from factories import crm_schema, track, write_partition

from churnhouse.config import SourceSettings
from churnhouse.contracts import RunWindow
from churnhouse.gates import GateFailed, run_raw_gate
from churnhouse.ingest import ingest

NIGHT = RunWindow("night-1", datetime(2024, 9, 2), datetime(2024, 9, 3))
RERUN = NIGHT  # the same night again, as `churnhouse run --date` twice does
NEXT = RunWindow("night-2", datetime(2024, 9, 3), datetime(2024, 9, 4))
HOSTILE = "x'; DROP TABLE analytics.churn_monthly; --"


def count(warehouse, sql: str, params=None) -> int:
    with warehouse.transaction() as tx:
        return tx.fetchone(sql, params or [])[0]


def events_settings(root) -> SourceSettings:
    return SourceSettings(crm_url="", billing_url="", events_uri=str(root), surveys_uri="")


def held(warehouse, table: str) -> list[str]:
    with warehouse.transaction() as tx:
        return [
            reason
            for (reason,) in tx.fetchall(
                "SELECT reason FROM raw._quarantine WHERE object_kind = ? ORDER BY reason",
                [f"held_{table}"],
            )
        ]


# --- rejected rows are held, and a rerun without a fix fails again -----------------------


def test_events_from_year_9999_and_1970_are_held_and_a_rerun_fails_again(warehouse, tmp_path):
    root = tmp_path / "events"
    good = [track(f"ok-{i}", "2024-09-02T10:00:00Z") for i in range(20)]
    absurd = [
        track("far-future", "9999-01-01T00:00:00Z"),
        track("epoch", "1970-01-01T00:00:00Z"),
    ]
    write_partition(root, "2024-09-02", good + absurd)
    for attempt in ("first", "rerun"):
        ingest("events", NIGHT, events_settings(root), warehouse)
        with pytest.raises(GateFailed, match="expect_column_values_to_be_between on event_at"):
            run_raw_gate(warehouse, "events", NIGHT)
        assert count(warehouse, "SELECT count(*) FROM raw.events") == 20, attempt
        assert count(warehouse, "SELECT count(*) FROM raw.events WHERE message_id = 'epoch'") == 0
    reasons = held(warehouse, "events")
    assert reasons == ["held by the raw gate: expect_column_values_to_be_between on event_at"] * 2
    # The source is fixed: the two lines are gone from the partition; the next night passes.
    write_partition(root, "2024-09-02", good)
    ingest("events", NEXT, events_settings(root), warehouse)
    run_raw_gate(warehouse, "events", NEXT)


def write_crm(path, accounts: list[dict]):
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    crm_schema(metadata)
    metadata.create_all(engine)
    with engine.begin() as connection:
        # No primary key: a source may deliver the same account version twice.
        connection.execute(sa.text("DROP TABLE accounts"))
        connection.execute(
            sa.text(
                "CREATE TABLE accounts (account_id TEXT, name TEXT, domain TEXT, industry TEXT, "
                "employee_count INTEGER, region TEXT, segment TEXT, owner_id TEXT, csm_id TEXT, "
                "workspace_id TEXT, billing_customer_id TEXT, created_at TIMESTAMP, "
                "updated_at TIMESTAMP, is_deleted BOOLEAN)"
            )
        )
        for account in accounts:
            connection.execute(
                sa.text(
                    "INSERT INTO accounts VALUES (:account_id, 'A', NULL, NULL, 5, :region, "
                    "'smb', 'u', NULL, 'ws_1', NULL, '2024-01-01', :updated_at, 0)"
                ),
                account,
            )
    engine.dispose()
    return SourceSettings(crm_url=url, billing_url="", events_uri="", surveys_uri="")


@pytest.mark.parametrize(
    ("accounts", "expectation"),
    [
        (
            [{"account_id": "acc_1", "region": HOSTILE, "updated_at": "2024-09-02 10:00:00"}],
            "expect_column_values_to_be_in_set on region",
        ),
        (
            [{"account_id": "acc_1", "region": "emea", "updated_at": "2024-09-02 10:00:00"}] * 2,
            "expect_compound_columns_to_be_unique on ['account_id', 'updated_at']",
        ),
    ],
    ids=["hostile-region", "duplicate-account"],
)
def test_rejected_crm_rows_are_held_and_a_rerun_fails_again(
    warehouse, tmp_path, accounts, expectation
):
    good = {"account_id": "acc_2", "region": "apac", "updated_at": "2024-09-02 09:00:00"}
    settings = write_crm(tmp_path / "crm.sqlite", [good, *accounts])
    for _ in ("first", "rerun"):
        ingest("crm", RERUN, settings, warehouse)
        with pytest.raises(GateFailed, match=expectation.split(" on ")[0]):
            run_raw_gate(warehouse, "crm", RERUN)
        rows = count(warehouse, "SELECT count(*) FROM raw.crm_accounts WHERE account_id = 'acc_1'")
        assert rows == 0, "the rejected version is not where the models read"
        assert count(warehouse, "SELECT count(*) FROM raw.crm_accounts") == 1
    assert held(warehouse, "crm_accounts")
    assert all(expectation in reason for reason in held(warehouse, "crm_accounts"))


# --- survey files whose shape is wrong stop the night, naming the file --------------------

CANCELLATION_HEADER = (
    "response_id,submitted_at,email,subscription_id,primary_reason,reason_text,"
    "offer_presented,offer_accepted,outcome"
)


def surveys(tmp_path, cancellation: dict[str, bytes], nps: dict[str, bytes]) -> SourceSettings:
    root = tmp_path / "surveys"
    for folder, files in (("cancellation", cancellation), ("nps", nps)):
        (root / folder).mkdir(parents=True)
        for name, data in files.items():
            (root / folder / name).write_bytes(data)
    return SourceSettings(crm_url="", billing_url="", events_uri="", surveys_uri=str(root))


GOOD_NPS = b"response_id,submitted_at,email,score,comment\nn1,2024-09-02T10:00:00Z,a@b.io,9,\n"


@pytest.mark.parametrize(
    ("cancellation", "nps", "named"),
    [
        (
            {
                "2024-09.csv": (
                    CANCELLATION_HEADER.replace("primary_reason", "reason").replace(
                        "outcome", "result"
                    )
                    + "\nr1,2024-09-02T10:00:00Z,a@b.io,,too_expensive,,none,false,canceled\n"
                ).encode()
            },
            {"2024-09.csv": GOOD_NPS},
            "cancellation/2024-09.csv: header lacks required column(s) primary_reason, outcome",
        ),
        (
            {},
            {
                "2024-09.csv": GOOD_NPS.replace(
                    b"response_id,submitted_at,email,score", b"RESPONSE_ID,SUBMITTED_AT,EMAIL,SCORE"
                )
            },
            "nps/2024-09.csv: header lacks required column(s) response_id, submitted_at, email, score",
        ),
        (
            {
                "2024-09.csv": (
                    CANCELLATION_HEADER
                    + "\nr1,2024-09-02T10:00:00Z,a@b.io,,other,太贵了,none,false,canceled\n"
                ).encode("gbk")
            },
            {"2024-09.csv": GOOD_NPS},
            "cancellation/2024-09.csv: not UTF-8 (byte 0xb9 at position 153)",
        ),
    ],
    ids=["renamed-cancellation-columns", "upper-cased-nps-header", "gbk-export"],
)
def test_a_survey_file_of_the_wrong_shape_is_quarantined_whole_and_stops_the_night(
    warehouse, tmp_path, cancellation, nps, named
):
    settings = surveys(tmp_path, cancellation, nps)
    result = ingest("surveys", NIGHT, settings, warehouse)
    assert result.rows_quarantined == 1, "one quarantine row for the whole file"
    with warehouse.transaction() as tx:
        (reason,) = tx.fetchone("SELECT reason FROM raw._quarantine WHERE source = 'surveys'")
    assert reason.startswith(named)
    with pytest.raises(GateFailed) as failure:
        run_raw_gate(warehouse, "surveys", NIGHT)
    assert "expect_column_values_to_be_null on refused_file" in str(failure.value)
    assert named in str(failure.value)
    # The rest of the source still loaded.
    loaded = count(warehouse, "SELECT count(*) FROM raw.survey_nps")
    assert loaded == (0 if "nps/" in named else 1)


def test_a_source_mostly_quarantined_stops_the_night(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_QUARANTINE_MAX_SHARE", "0.10")
    rows = [f"n{i},2024-09-02T10:00:00Z,a{i}@b.io,{11 if i < 12 else 9}," for i in range(40)]
    data = ("response_id,submitted_at,email,score,comment\n" + "\n".join(rows) + "\n").encode()
    settings = surveys(tmp_path, {}, {"2024-09.csv": data})
    ingest("surveys", NIGHT, settings, warehouse)
    with pytest.raises(GateFailed, match=r"quarantined_share \(1 rows\): e.g. \[0.3\]"):
        run_raw_gate(warehouse, "surveys", NIGHT)


# --- an unreadable event file is one quarantine row; the night and the nights after go on ---


def test_unreadable_event_files_are_quarantined_one_row_each_and_the_rest_loads(
    warehouse, tmp_path
):
    root = tmp_path / "events"
    write_partition(root, "2024-09-01", [track(f"a{i}", "2024-09-01T10:00:00Z") for i in range(5)])
    good = write_partition(
        root, "2024-09-02", [track(f"b{i}", "2024-09-02T10:00:00Z") for i in range(5)]
    )
    folder = good.parent
    (folder / "part-0001.jsonl.gz").write_bytes(b"this is not gzip at all\n")
    truncated = gzip.compress(
        ("\n".join(track(f"t{i}", "2024-09-02T11:00:00Z") for i in range(2000))).encode()
    )
    (folder / "part-0002.jsonl.gz").write_bytes(truncated[: len(truncated) // 2])
    huge = json.dumps({"message_id": "huge", "type": "track", "blob": "x" * 3_000_000})
    with gzip.open(folder / "part-0003.jsonl.gz", "wt") as handle:
        handle.write(huge + "\n")
    for run in (NIGHT, NEXT):  # the second night re-reads the partition: not blocked either
        result = ingest("events", run, events_settings(root), warehouse)
        assert result.rows_loaded == 10
    with warehouse.transaction() as tx:
        rows = tx.fetchall(
            "SELECT location, reason FROM raw._quarantine WHERE object_kind = 'event_file' "
            "ORDER BY location"
        )
    assert [location for location, _ in rows] == [
        "dt=2024-09-02/part-0001.jsonl.gz",
        "dt=2024-09-02/part-0002.jsonl.gz",
        "dt=2024-09-02/part-0003.jsonl.gz",
    ]
    assert all(reason.startswith("unreadable file: ") for _, reason in rows)
    with warehouse.transaction() as tx:
        statuses = tx.fetchall("SELECT status FROM raw._loads WHERE source = 'events'")
    assert statuses == [("success",), ("success",)]
    run_raw_gate(warehouse, "events", NEXT)


def test_the_window_moves_past_an_unreadable_file(warehouse, tmp_path):
    root = tmp_path / "events"
    write_partition(root, "2024-09-02", [track(f"b{i}", "2024-09-02T10:00:00Z") for i in range(5)])
    (root / "dt=2024-09-02" / "part-0001.jsonl.gz").write_bytes(b"\x1f\x8bnot really")
    ingest("events", NIGHT, events_settings(root), warehouse)
    with warehouse.transaction() as tx:
        (end,) = tx.fetchone(
            "SELECT max(interval_end) FROM raw._loads WHERE source = 'events' AND status = 'success'"
        )
    assert end == NIGHT.interval_end
    assert NEXT.interval_start - timedelta(days=7) < end


# --- an invoice line that cannot be priced stops the night ----------------------------------


def test_a_line_naming_an_unknown_price_is_held_and_stops_the_night(warehouse, tmp_path):
    """The newer Stripe shape names a price by id; an export without that price must not
    load as zero MRR."""
    from factories import EXAMPLES

    invoice = json.loads((EXAMPLES / "billing-invoice-2025-03-31.json").read_text())
    invoice["lines"]["has_more"] = False
    folder = tmp_path / "billing"
    folder.mkdir()
    (folder / "invoices.jsonl").write_text(json.dumps(invoice) + "\n")
    settings = SourceSettings(crm_url="", billing_url=str(folder), events_uri="", surveys_uri="")
    night = RunWindow("night-1", datetime(2024, 9, 1), datetime(2024, 9, 2))
    ingest("billing", night, settings, warehouse)
    with pytest.raises(GateFailed) as failure:
        run_raw_gate(warehouse, "billing", night)
    assert (
        "invoice in_8I9o0P line il_1A2s3D: price price_team_monthly_eur is in no price list"
        in str(failure.value)
    )
    assert count(warehouse, "SELECT count(*) FROM raw.billing_invoice_lines") == 0
    assert held(warehouse, "billing_invoice_lines") == [
        "held by the raw gate: expect_column_values_to_be_null on line_problem"
    ]
