"""Real receivers for the alerts tests: an HTTP server (Slack-format and JSON webhooks)
and an SMTP server (aiosmtpd), both in the test process; and the simulated company."""

from __future__ import annotations

import csv
import json
import socket
import threading
from datetime import datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SIMULATION = {"customers": 120, "months": 12, "start": "2024-01", "seed": 3}


class Hooks:
    """An HTTP server that records every POST by path; `down` paths answer 503."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.down: set[str] = set()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path in hooks.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                hooks.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[dict]:
        return [body for got, body in self.received if got == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd on a fixed local port; `stop()` makes the server down, `start()` up again."""

    def __init__(self) -> None:
        self.messages: list = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
                message = message_from_bytes(envelope.content, policy=policy.default)
                mailbox.messages.append((list(envelope.rcpt_tos), message))
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.handler = Handler()
        self.running = False
        self.start()

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        # A stopped controller cannot start again: a new one on the same port.
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        self.controller.stop()
        self.running = False

    @property
    def uri(self) -> str:
        return f"smtp://127.0.0.1:{self.port}/?from_email=churnhouse%40example.com"


def last_competitor_churn(bundle: Path) -> datetime:
    with open(bundle / "truth" / "churn_events.csv", encoding="utf-8", newline="") as handle:
        moments = [
            datetime.fromisoformat(row["churned_at"])
            for row in csv.DictReader(handle)
            if row["reason_category"] == "competitor"
        ]
    return max(moments)


def published_file(url: str) -> Path:
    """The published DuckDB file of the warehouse at `url` (what BI tools open)."""
    from churnhouse.warehouse import open_warehouse

    return open_warehouse(url).published_path
