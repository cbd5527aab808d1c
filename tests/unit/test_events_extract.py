"""Events: bulk parse in DuckDB, quarantine of every bad line kind, dedupe, UTC."""

import json
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
    assert sorted(rows) == ["m1", "m2", "m4", "m5"], "a track call without group id is kept"
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


def test_a_null_contract_key_alone_keeps_no_raw_line_and_beside_another_key_does(tmp_path):
    # Null values are not counted as contract fields found, so these lines take the
    # exact key check rather than the count.
    null_only = track("null_only", "2024-09-01T00:00:00Z", anonymous_id=None, traits=None)
    null_and_new = track("null_and_new", "2024-09-01T00:00:00Z", anonymous_id=None, channel="web")
    write_partition(tmp_path / "events", "2024-09-01", [null_only, null_and_new])
    rows, bad = read_events(str(tmp_path / "events"), None, date(2024, 9, 2), RUN)
    rows = {row["message_id"]: row for row in rows.to_pylist()}
    assert bad == []
    assert rows["null_only"]["raw"] is None
    assert json.loads(rows["null_and_new"]["raw"]) == json.loads(null_and_new)


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
    assert sorted(rows.column("message_id").to_pylist()) == ["m1", "m2", "m4", "m5"]
    assert [row.location for row in bad] == [row.location for row in local_bad]
    assert rows.column("file").to_pylist() == local_rows.column("file").to_pylist()


# --- both key styles, every call type (sources.md section 3) --------------------------------

WIRE = [
    {"messageId": "w-group", "type": "group", "userId": "u_1", "anonymousId": "d_1",
     "groupId": "ws_7", "traits": {"name": "Seven"}, "timestamp": "2024-09-01T09:01:00-05:00",
     "originalTimestamp": "2024-09-01T09:01:00-05:00", "sentAt": "2024-09-01T14:01:01Z",
     "receivedAt": "2024-09-01T14:01:02.004Z", "context": {"library": {"name": "analytics-python"}}},
    {"messageId": "w-track", "type": "track", "event": "report_created", "userId": "u_1",
     "properties": {"kind": "funnel"}, "timestamp": "2024-09-02T00:12:45.000+08:00",
     "receivedAt": "2024-09-01T16:12:47Z"},
    {"messageId": "w-page", "type": "page", "name": "Dashboards", "userId": "u_1",
     "timestamp": "2024-09-01T16:13:02Z", "context": {"groupId": "ws_8"}},
    {"messageId": "w-screen", "type": "screen", "name": "Home", "anonymousId": "d_2",
     "timestamp": "2024-09-01T16:14:00Z"},
    {"messageId": "w-identify", "type": "identify", "userId": "u_1",
     "traits": {"email": "li.wei@example.com"}, "timestamp": "2024-09-01T09:00:00-05:00"},
    {"messageId": "w-alias", "type": "alias", "previousId": "d_1", "userId": "u_1",
     "timestamp": "2024-09-01T09:00:00Z"},
    {"messageId": "w-odd", "type": "experiment_viewed", "userId": "u_1", "groupId": "ws_7",
     "timestamp": "2024-09-01T09:00:00Z"},
]  # fmt: skip
WAREHOUSE = [
    {"message_id": "h-track", "type": "track", "event": "login", "user_id": "u_2",
     "group_id": "ws_9", "timestamp": "2024-09-01T10:00:00+08:00", "received_at": "2024-09-01T02:00:01Z"},
    {"message_id": "h-page", "type": "page", "user_id": "u_2", "anonymous_id": "d_3",
     "timestamp": "2024-09-01T10:00:00Z", "context": {"group_id": "ws_10"}},
    {"message_id": "h-identify", "type": "identify", "user_id": "u_2",
     "timestamp": "2024-09-01T09:00:00Z", "context": {"traits": {"email": "a@b.io"}}},
]  # fmt: skip


def read_lines(tmp_path, lines: list[str]):
    write_partition(tmp_path / "events", "2024-09-01", lines)
    rows, bad = read_events(str(tmp_path / "events"), None, date(2024, 9, 2), RUN)
    return {row["message_id"]: row for row in rows.to_pylist()}, bad


@pytest.mark.parametrize(
    "calls",
    [pytest.param(WIRE, id="wire"), pytest.param(WAREHOUSE, id="warehouse"),
     pytest.param(WIRE[:3] + WAREHOUSE + WIRE[3:], id="mixed-in-one-file")],
)  # fmt: skip
def test_both_key_styles_and_every_call_type_load(tmp_path, calls):
    rows, bad = read_lines(tmp_path, [json.dumps(call) for call in calls])
    assert bad == []
    assert sorted(rows) == sorted(c.get("messageId") or c["message_id"] for c in calls)
    for call in calls:
        row = rows[call.get("messageId") or call["message_id"]]
        assert row["type"] == call["type"]
        assert row["user_id"] == (call.get("userId") or call.get("user_id"))
        assert row["anonymous_id"] == (call.get("anonymousId") or call.get("anonymous_id"))


def test_the_own_group_id_is_top_level_else_in_context(tmp_path):
    rows, _ = read_lines(tmp_path, [json.dumps(call) for call in WIRE + WAREHOUSE])
    groups = {key: row["group_id"] for key, row in rows.items()}
    assert groups == {
        "w-group": "ws_7", "w-track": None, "w-page": "ws_8", "w-screen": None,
        "w-identify": None, "w-alias": None, "w-odd": "ws_7",
        "h-track": "ws_9", "h-page": "ws_10", "h-identify": None,
    }  # fmt: skip


def test_wire_times_e_mail_and_the_keys_beyond_the_contract(tmp_path):
    rows, _ = read_lines(tmp_path, [json.dumps(call) for call in WIRE])
    group, track = rows["w-group"], rows["w-track"]
    assert track["event_at"] == datetime(2024, 9, 1, 16, 12, 45), "+08:00 converted to UTC"
    assert group["received_at"] == datetime(2024, 9, 1, 14, 1, 2, 4000)
    assert rows["w-identify"]["email"] == "li.wei@example.com", "from traits.email"
    assert json.loads(group["traits"]) == {"name": "Seven"}
    assert json.loads(group["raw"]) == WIRE[0], "sentAt, originalTimestamp are kept"
    assert json.loads(rows["w-alias"]["raw"])["previousId"] == "d_1"
    assert track["raw"] is None, "a line with only contract keys is not stored twice"
    assert rows["w-page"]["name"] == "Dashboards" and rows["w-page"]["raw"] is None


def test_a_call_type_not_listed_is_kept_and_never_quarantined(tmp_path):
    rows, bad = read_lines(tmp_path, [json.dumps(WIRE[-1])])
    assert bad == [] and rows["w-odd"]["type"] == "experiment_viewed"


def test_bad_wire_lines_are_quarantined_with_their_reasons(tmp_path):
    lines = [
        '{"messageId": "w1", "type": "track", "timestamp": "2024-09-01T00:00:00Z"',
        json.dumps({"type": "page", "userId": "u", "timestamp": "2024-09-01T00:00:00Z"}),
        json.dumps({"messageId": "", "message_id": "", "type": "page", "timestamp": "2024-09-01"}),
        json.dumps({"messageId": "w4", "userId": "u", "timestamp": "2024-09-01T00:00:00Z"}),
        json.dumps({"messageId": "w5", "type": "group", "groupId": "ws"}),
        json.dumps({"messageId": "w6", "type": "page", "timestamp": "last tuesday"}),
        json.dumps({"messageId": "w7", "type": "page", "timestamp": "2024-09-01T00:00:00Z"}),
    ]
    rows, bad = read_lines(tmp_path, lines)
    assert {row.location.rsplit(":", 1)[1]: row.reason for row in bad} == {
        "1": "invalid JSON",
        "2": "missing required key: message_id",
        "3": "missing required key: message_id",
        "4": "missing required key: type",
        "5": "missing required key: timestamp",
        "6": "unparseable timestamp: last tuesday",
    }
    assert sorted(rows) == ["w7"]
