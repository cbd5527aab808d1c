"""Raw gates: a broken night is stopped with a message naming the failed expectation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from factories import track, write_partition

from churnhouse.config import SourceSettings
from churnhouse.contracts import RunWindow
from churnhouse.gates import GateFailed, run_raw_gate
from churnhouse.ingest import ingest


def night(day: int) -> RunWindow:
    start = datetime(2024, 9, day)
    return RunWindow(f"night-{day}", start, start + timedelta(days=1))


def test_a_sudden_volume_drop_fails_the_gate_loudly(warehouse, tmp_path):
    root = tmp_path / "events"
    sources = SourceSettings(crm_url="", billing_url="", events_uri=str(root), surveys_uri="")
    write_partition(
        root, "2024-08-30", [track(f"h{i}", "2024-08-30T10:00:00Z") for i in range(500)]
    )
    for day in range(1, 6):
        volume = 100 if day < 5 else 8  # the fifth night delivers 8% of the usual volume
        lines = [track(f"d{day}-{i}", f"2024-09-0{day}T10:00:00Z") for i in range(volume)]
        write_partition(root, f"2024-09-0{day}", lines)
    for day in range(1, 5):
        ingest("events", night(day), sources, warehouse)
        run_raw_gate(warehouse, "events", night(day))
    ingest("events", night(5), sources, warehouse)
    with pytest.raises(GateFailed) as failure:
        run_raw_gate(warehouse, "events", night(5))
    assert "expect_column_values_to_be_between on rows_tonight (1 rows): e.g. [8]" in str(
        failure.value
    )
    with warehouse.transaction() as tx:
        recorded = tx.fetchall(
            "SELECT suite, success FROM raw._validation_runs WHERE run_id = 'night-5' ORDER BY suite"
        )
    assert recorded == [
        ("quarantine_events", True),
        ("raw_events", True),
        ("volume_events", False),
    ]


def weekday_company(root, saturday_tonight: int) -> None:
    """Four weeks of a B2B product: 100 events on weekdays, 20 on weekends, then tonight
    (Saturday 2024-09-28) with `saturday_tonight` events."""
    for offset in range(28, -1, -1):
        day = datetime(2024, 9, 28) - timedelta(days=offset)
        volume = saturday_tonight if offset == 0 else (20 if day.weekday() >= 5 else 100)
        stamp = f"{day:%Y-%m-%d}T10:00:00Z"
        write_partition(
            root, f"{day:%Y-%m-%d}", [track(f"{day:%m%d}-{i}", stamp) for i in range(volume)]
        )


@pytest.mark.parametrize(("tonight", "passes"), [(19, True), (6, False)])
def test_a_weekend_is_held_against_the_weekends_before_it(warehouse, tmp_path, tonight, passes):
    root = tmp_path / "events"
    weekday_company(root, saturday_tonight=tonight)
    sources = SourceSettings(crm_url="", billing_url="", events_uri=str(root), surveys_uri="")
    saturday = RunWindow("saturday", datetime(2024, 9, 28), datetime(2024, 9, 29))
    ingest("events", saturday, sources, warehouse)  # the first run: the whole history
    if passes:  # 19 is under half the trailing 7 days' median (100), near the Saturdays' 20
        run_raw_gate(warehouse, "events", saturday)
    else:
        with pytest.raises(GateFailed, match="rows_tonight"):
            run_raw_gate(warehouse, "events", saturday)


def test_the_usual_volume_falls_back_to_the_trailing_days_without_weekly_history():
    from churnhouse.gates.volume import usual_volume

    assert usual_volume([20, 22, 0, 18], [100] * 7) == (
        20,
        "median of the same weekday over 3 weeks",
    )
    assert usual_volume([0, 0, 0, 40], [100, 100, 0, 0, 100, 100, 100]) == (
        100,
        "median of the trailing 7 days",
    )


def test_null_keys_in_a_crm_batch_are_named_with_offending_rows(warehouse, tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE users (user_id TEXT, full_name TEXT, email TEXT, team TEXT, updated_at TIMESTAMP)"
            )
        )
        connection.execute(
            sa.text(
                "CREATE TABLE accounts (account_id TEXT, name TEXT, domain TEXT, industry TEXT, "
                "employee_count INTEGER, region TEXT, segment TEXT, owner_id TEXT, csm_id TEXT, "
                "workspace_id TEXT, billing_customer_id TEXT, created_at TIMESTAMP, updated_at TIMESTAMP, "
                "is_deleted BOOLEAN)"
            )
        )
        connection.execute(
            sa.text(
                "CREATE TABLE contacts (contact_id TEXT, account_id TEXT, email TEXT, full_name TEXT, "
                "title TEXT, is_primary BOOLEAN, created_at TIMESTAMP, updated_at TIMESTAMP)"
            )
        )
        connection.execute(
            sa.text(
                "CREATE TABLE activities (activity_id TEXT, account_id TEXT, user_id TEXT, type TEXT, "
                "occurred_at TIMESTAMP, subject TEXT, body TEXT, updated_at TIMESTAMP)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO accounts VALUES "
                "('acc_1', 'A', NULL, NULL, 5, 'emea', 'smb', 'u', NULL, 'ws_1', NULL, '2024-01-01', '2024-09-01', 0), "
                "(NULL, 'B', NULL, NULL, 5, 'mars', 'smb', 'u', NULL, 'ws_2', NULL, '2024-01-01', '2024-09-01', 0)"
            )
        )
    engine.dispose()
    sources = SourceSettings(crm_url=url, billing_url="", events_uri="", surveys_uri="")
    ingest("crm", night(1), sources, warehouse)
    with pytest.raises(GateFailed) as failure:
        run_raw_gate(warehouse, "crm", night(1))
    message = str(failure.value)
    assert "expect_column_values_to_not_be_null on account_id (1 rows)" in message
    assert "expect_column_values_to_be_in_set on region (1 rows): e.g. ['mars']" in message
