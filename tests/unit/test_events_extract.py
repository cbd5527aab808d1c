"""Events: bulk parse in DuckDB, quarantine of every bad line kind, dedupe, UTC."""

from datetime import date, datetime

import pytest
from factories import track, write_partition

from churnhouse.contracts import RunWindow
from churnhouse.sources.events import partitions_between, read_events

RUN = RunWindow("test", datetime(2024, 9, 2), datetime(2024, 9, 3))


@pytest.fixture
def events_root(tmp_path):
    root = tmp_path / "events"
    write_partition(
        root,
        "2024-09-01",
        [
            track("m1", "2024-09-01T10:00:00+08:00", received_at="2024-09-01T02:00:01Z"),
            track("m2", "2024-09-01T10:00:00-05:00"),
        ],
    )
    write_partition(
        root,
        "2024-09-02",
        [
            track(
                "m1", "2024-09-01T10:00:00+08:00", received_at="2024-09-02T02:00:01Z"
            ),  # re-delivery
            "{not json",
            "[1, 2]",
            '{"type": "track", "timestamp": "2024-09-01T00:00:00Z", "group_id": "g"}',
            '{"message_id": "m9", "timestamp": "2024-09-01T00:00:00Z"}',
            '{"message_id": "m8", "type": "track", "group_id": "g"}',
            track("m3", "yesterday at noon"),
            track("m4", "2024-09-01T00:00:00Z", group_id=None),
            '{"message_id": "m5", "type": "identify", "user_id": "u_2", '
            '"timestamp": "2024-08-28T09:00:00", "context": {"traits": {"email": "A@B.com"}}}',
            "",
        ],
    )
    write_partition(root, "2024-09-03", [track("m7", "2024-09-03T00:00:00Z")])
    return root


def test_partitions_are_chosen_by_received_day(events_root):
    names = [
        p.rsplit("/", 1)[-1]
        for p in partitions_between(str(events_root), date(2024, 9, 2), date(2024, 9, 3))
    ]
    assert names == ["dt=2024-09-02"]
    assert len(partitions_between(str(events_root), None, date(2024, 9, 3))) == 2


def test_good_rows_are_deduplicated_and_in_utc(events_root):
    rows, _ = read_events(str(events_root), None, date(2024, 9, 3), RUN)
    rows = {row["message_id"]: row for row in rows.to_pylist()}
    assert sorted(rows) == ["m1", "m2", "m5"]
    assert rows["m1"]["event_at"] == datetime(2024, 9, 1, 2, 0)
    assert rows["m1"]["dt"] == date(2024, 9, 1), "the first delivery is kept"
    assert rows["m2"]["event_at"] == datetime(2024, 9, 1, 15, 0)
    assert rows["m5"]["event_at"] == datetime(2024, 8, 28, 9, 0), "no offset means UTC"
    assert rows["m5"]["email"] == "A@B.com" and rows["m5"]["group_id"] is None


def test_nothing_of_a_line_is_lost_and_the_common_line_is_not_stored_twice(tmp_path):
    import json

    new_key = track("new_key", "2024-09-01T00:00:00Z", campaign="spring")
    lines = [
        new_key,
        '{"message_id": "rich_context", "type": "identify", "timestamp": "2024-09-01T00:00:00Z", '
        '"context": {"ip": "10.0.0.1", "traits": {"email": "a@b.io", "plan": "pro"}}}',
        track("plain", "2024-09-01T00:00:00Z", properties={"feature": "export"}),
    ]
    write_partition(tmp_path / "events", "2024-09-01", lines)
    rows, bad = read_events(str(tmp_path / "events"), None, date(2024, 9, 2), RUN)
    rows = {row["message_id"]: row for row in rows.to_pylist()}
    assert bad == []
    assert json.loads(rows["new_key"]["raw"]) == json.loads(new_key), "a key beyond the contract"
    assert rows["rich_context"]["raw"] is None and rows["plain"]["raw"] is None
    assert json.loads(rows["rich_context"]["context"]) == {
        "ip": "10.0.0.1",
        "traits": {"email": "a@b.io", "plan": "pro"},
    }
    assert rows["rich_context"]["email"] == "a@b.io"
    assert json.loads(rows["plain"]["properties"]) == {"feature": "export"}


def test_every_bad_line_is_quarantined_with_location_and_reason(events_root):
    _, bad = read_events(str(events_root), None, date(2024, 9, 3), RUN)
    reasons = {row.location: row.reason for row in bad}
    assert reasons == {
        "dt=2024-09-02/part-0000.jsonl.gz:2": "invalid JSON",
        "dt=2024-09-02/part-0000.jsonl.gz:3": "not a JSON object",
        "dt=2024-09-02/part-0000.jsonl.gz:4": "missing required key: message_id",
        "dt=2024-09-02/part-0000.jsonl.gz:5": "missing required key: type",
        "dt=2024-09-02/part-0000.jsonl.gz:6": "missing required key: timestamp",
        "dt=2024-09-02/part-0000.jsonl.gz:7": "unparseable timestamp: yesterday at noon",
        "dt=2024-09-02/part-0000.jsonl.gz:8": "track call without group_id",
    }
    assert next(row for row in bad if row.reason == "invalid JSON").raw_text == "{not json"


def test_missing_events_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="events location"):
        read_events(str(tmp_path / "nowhere"), None, date(2024, 9, 3), RUN)


def test_any_fsspec_location_is_read_through_duckdb(events_root):
    """An object-store style URI (fsspec's in-memory filesystem stands in for s3:// or gs://)."""
    import fsspec

    memory = fsspec.filesystem("memory")
    for path in events_root.rglob("*.jsonl.gz"):
        memory.pipe(f"memory://bucket/events/{path.parent.name}/{path.name}", path.read_bytes())
    rows, bad = read_events("memory://bucket/events", None, date(2024, 9, 3), RUN)
    local_rows, local_bad = read_events(str(events_root), None, date(2024, 9, 3), RUN)
    assert sorted(rows.column("message_id").to_pylist()) == ["m1", "m2", "m5"]
    assert [row.location for row in bad] == [row.location for row in local_bad]
    assert rows.column("file").to_pylist() == local_rows.column("file").to_pylist()
