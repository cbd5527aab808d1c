"""The billing client pins the Stripe API version it reads and honours Retry-After dates.

A small real HTTP server records what the client sends and answers as Stripe does.
"""

from __future__ import annotations

import json
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from churnhouse.sources.billing import BillingApiClient
from churnhouse.sources.billing.client import DEFAULT_STRIPE_VERSION, retry_after_seconds


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict] = []
    rate_limit_first = False

    def do_GET(self):  # noqa: N802 - the http.server name
        Recorder.seen.append(dict(self.headers))
        if Recorder.rate_limit_first and len(Recorder.seen) == 1:
            self.send_response(429)
            self.send_header("Retry-After", formatdate(usegmt=True))  # an HTTP date: now
            self.end_headers()
            return
        body = json.dumps({"object": "list", "data": [{"id": "cus_1"}], "has_more": False})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.seen = []
    Recorder.rate_limit_first = False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_every_request_names_the_api_version_the_extractor_reads(server, monkeypatch):
    monkeypatch.delenv("CHURN_STRIPE_VERSION", raising=False)
    with BillingApiClient(server, "sk_test") as client:
        assert [o["id"] for o in client.iter_objects("customers")] == ["cus_1"]
    assert Recorder.seen[0]["Stripe-Version"] == DEFAULT_STRIPE_VERSION == "2025-03-31.basil"


def test_the_api_version_is_a_setting(server, monkeypatch):
    monkeypatch.setenv("CHURN_STRIPE_VERSION", "2024-06-20")
    with BillingApiClient(server, "sk_test") as client:
        list(client.iter_objects("customers"))
    assert Recorder.seen[0]["Stripe-Version"] == "2024-06-20"


def test_a_retry_after_http_date_is_honoured(server):
    Recorder.rate_limit_first = True
    waits: list[float] = []
    with BillingApiClient(server, "sk_test", sleep=waits.append) as client:
        assert [o["id"] for o in client.iter_objects("customers")] == ["cus_1"]
    assert len(Recorder.seen) == 2
    assert waits and waits[0] <= 1.0, "an HTTP date of now means retry at once, not back off"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("not a date", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header, seconds):
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    assert retry_after_seconds(header, now=now) == seconds
