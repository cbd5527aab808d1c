"""Segment's own tracking library → a local collector → partition files → load → dbt marts.

segment-analytics-python (pinned test dependency) posts identify, group, track, page,
screen and alias calls, in its wire style, to a small HTTP collector on 127.0.0.1 that
stamps `receivedAt` as Segment's collector does. The captured calls are written as
`dt=YYYY-MM-DD/part-NNNN.jsonl.gz` partitions, read by the real events extractor and
loader, and built by dbt: the marts count each call for the workspace sources.md
section 3 assigns it, including users tied to a workspace by a group call only.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from company import AS_OF, Company, months, query

from churnhouse.contracts import Extracted, RunWindow
from churnhouse.load import load_source
from churnhouse.sources.events import read_partitions
from churnhouse.sources.events.extract import end_day
from churnhouse.transform import build
from churnhouse.warehouse import open_warehouse

pytestmark = pytest.mark.slow  # builds a company with dbt

WRITE_KEY = "test-write-key"
CENTRAL = timezone(timedelta(hours=-5))
SHANGHAI = timezone(timedelta(hours=8))


class Collector:
    """Accepts `/v1/batch` posts (gzip or not) and keeps every message with `receivedAt`."""

    def __init__(self):
        self.messages: list[dict] = []
        self.requests: list[dict] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                payload = json.loads(body)
                received = datetime.now(UTC).isoformat(timespec="milliseconds")
                collector.requests.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "gzip": self.headers.get("Content-Encoding") == "gzip",
                    }
                )
                for message in payload["batch"]:
                    collector.messages.append({**message, "receivedAt": received})
                answer = b'{"success": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def write_partitions(self, root: Path) -> list[Path]:
        """The captured calls as the object-store destination lands them: by received day."""
        by_day: dict[str, list[str]] = {}
        for message in self.messages:
            by_day.setdefault(message["receivedAt"][:10], []).append(json.dumps(message))
        paths = []
        for day, lines in sorted(by_day.items()):
            folder = root / f"dt={day}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "part-0000.jsonl.gz"
            path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
            paths.append(path)
        return paths


def send_calls(host: str) -> None:
    """One month of product use, sent the way an application sends it."""
    from segment.analytics import Client

    client = Client(WRITE_KEY, host=host, sync_mode=True, gzip=True, max_retries=0)

    def at(day: int, hour: int, zone=CENTRAL) -> datetime:
        return datetime(2024, 6, day, hour, 0, tzinfo=zone)

    # Alice: identified, tied to ws_a by a group call, then active with track and page
    # calls that carry no group id; later she moves to ws_b (the latest group call wins).
    client.identify("alice", {"email": "alice@alpha.io"}, timestamp=at(3, 9), anonymous_id="d1")
    client.group("alice", "ws_a", {"name": "Alpha"}, timestamp=at(3, 9))
    client.track("alice", "report_created", {"kind": "funnel"}, timestamp=at(3, 10))
    client.page("alice", name="Dashboards", properties={"path": "/d"}, timestamp=at(4, 10))
    client.track("alice", "login", timestamp=at(5, 20))  # 01:00 UTC on 6 June
    client.group("alice", "ws_b", {"name": "Beta"}, timestamp=at(10, 9))
    client.track("alice", "login", timestamp=at(11, 10))
    # Bob: his app puts the workspace in context.groupId; a screen call is activity too.
    client.track("bob", "login", context={"groupId": "ws_b"}, timestamp=at(12, 10, SHANGHAI))
    client.screen("bob", name="Home", context={"groupId": "ws_b"}, timestamp=at(13, 10))
    client.alias("device-7", "bob", timestamp=at(13, 11))  # not activity
    # Carol: active before any group call (that call reaches no workspace), then grouped.
    client.track("carol", "login", timestamp=at(14, 10))
    client.group("carol", "ws_b", timestamp=at(20, 9))
    client.page("carol", name="Reports", timestamp=at(20, 10))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segment")
    with Collector() as collector:
        send_calls(collector.url)
    url = str(folder / "warehouse.duckdb")
    company().write(url)
    run = RunWindow("segment-library", AS_OF - timedelta(days=1), AS_OF)
    root = folder / "events"
    collector.write_partitions(root)
    today = datetime.now(UTC).replace(tzinfo=None)
    batch = read_partitions(str(root), None, end_day(today), run)
    loaded = load_source(open_warehouse(url), "events", run, Extracted([batch]))
    build(url, AS_OF, marts_schema="analytics")
    return collector, url, loaded


def company() -> Company:
    """Two paying customers, each with a workspace; no events (those come from Segment)."""
    c = Company()
    for key, workspace in (("a", "ws_a"), ("b", "ws_b")):
        c.account(f"acc_{key}", "smb", "na", "2023-12-01", workspace_id=workspace)
        c.customer(f"cus_{key}", f"billing@{key}.io", crm_account_id=f"acc_{key}")
        c.subscription(f"sub_{key}", f"cus_{key}")
        c.monthly(f"cus_{key}", f"sub_{key}", 10000, months("2024-05-01", 2))
    return c


def test_the_library_posts_wire_style_batches_to_the_collector(built):
    collector, _, _ = built
    assert {r["path"] for r in collector.requests} == {"/v1/batch"}
    assert all(r["gzip"] for r in collector.requests)
    expected = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    assert {r["authorization"] for r in collector.requests} == {expected}
    types = [m["type"] for m in collector.messages]
    assert types.count("group") == 3 and types.count("page") == 2 and "screen" in types
    assert all("messageId" in m and "message_id" not in m for m in collector.messages)
    assert not any("groupId" in m for m in collector.messages if m["type"] == "track")


def test_every_call_loads_none_is_quarantined(built):
    collector, url, loaded = built
    assert loaded.rows_quarantined == 0
    rows = query(url, "SELECT type, count(*) FROM raw.events GROUP BY type ORDER BY type")
    sent: dict[str, int] = {}
    for message in collector.messages:
        sent[message["type"]] = sent.get(message["type"], 0) + 1
    assert dict(rows) == sent
    ids = query(url, "SELECT message_id FROM raw.events")
    assert sorted(i for (i,) in ids) == sorted(m["messageId"] for m in collector.messages)
    (email,) = query(url, "SELECT email FROM raw.events WHERE type = 'identify'")
    assert email == ("alice@alpha.io",)


def test_activity_counts_for_the_workspace_of_the_latest_group_call(built):
    _, url, _ = built
    june = query(
        url,
        "SELECT customer_key, workspace_id, active_users, active_days "
        "FROM analytics.engagement_monthly WHERE month = DATE '2024-06-01' ORDER BY 1",
    )
    # acc_a: alice on 3, 4 and 6 June (UTC); acc_b: alice (11), bob (12 UTC, 13), carol (20).
    assert june == [("acc_a", "ws_a", 1, 3), ("acc_b", "ws_b", 3, 4)]


def test_activity_before_any_group_call_is_listed_as_unmatched(built):
    _, url, _ = built
    rows = query(
        url,
        "SELECT record_type, record_id, records, first_seen_at FROM analytics.identity_unmatched "
        "WHERE source = 'events'",
    )
    assert rows == [("product_user", "carol", 1, datetime(2024, 6, 14, 15, 0))]
