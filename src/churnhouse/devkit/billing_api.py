"""A Stripe-compatible billing API serving a billing export folder, for demos and tests.

`GET /v1/customers|subscriptions|invoices|charges` with bearer-key auth, Stripe's
list pages (`limit`, `starting_after`), `created[gte]` / `created[lt]` filters
and, for subscriptions, Stripe's `status` rule (canceled ones are left out unless
asked for). Fault knobs answer a seeded share of requests with 429 (and a
`Retry-After`) or 500, before auth and paging, so retries can be tested.

The folder is read once at start (bad lines are skipped with a warning on
stderr; a later line replaces an earlier one with the same id). Each object is
kept as its original JSON text, not as a dict, so a quarter of a million
invoices fit comfortably; pages are joined from those texts.
"""

from __future__ import annotations

import hmac
import json
import logging
import random
import sys
import threading
from bisect import bisect_right
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

BILLING_RESOURCES = ("customers", "subscriptions", "invoices", "charges")

log = logging.getLogger("churnhouse.billing_api")

SUBSCRIPTION_STATUSES = (
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "incomplete",
    "incomplete_expired",
    "paused",
)
# Stripe's list filters beyond a single status: everything, and everything that has ended.
_STATUS_SETS = {"all": None, "ended": {"canceled", "incomplete_expired"}}
_COMMON_PARAMS = {"limit", "starting_after", "created[gte]", "created[lt]"}


class StoredObject(NamedTuple):
    created: int
    id: str
    status: str | None
    json: bytes


class Collection:
    """One resource's objects, newest first (`created` desc, then `id` desc)."""

    def __init__(self, objects: list[StoredObject]) -> None:
        self.objects = sorted(objects, key=lambda o: (o.created, o.id), reverse=True)
        self.position = {obj.id: index for index, obj in enumerate(self.objects)}
        self._minus_created = [-obj.created for obj in self.objects]  # ascending, for bisect

    def page(
        self,
        limit: int,
        starting_after: str | None,
        created_gte: int | None,
        created_lt: int | None,
        statuses: set[str] | None,
    ) -> tuple[list[StoredObject], bool]:
        """Up to `limit` matching objects after `starting_after`, and whether more match."""
        start = 0 if starting_after is None else self.position[starting_after] + 1
        if created_lt is not None:  # skip the objects newer than the window
            start = max(start, bisect_right(self._minus_created, -created_lt))
        end = len(self.objects)
        if created_gte is not None:  # stop at the first object older than the window
            end = bisect_right(self._minus_created, -created_gte)
        found: list[StoredObject] = []
        for index in range(start, end):
            obj = self.objects[index]
            if statuses is None or obj.status in statuses:
                if len(found) == limit:
                    return found, True
                found.append(obj)
        return found, False


def load_collections(data_dir: Path | str) -> dict[str, Collection]:
    """Every resource of an export folder; bad lines are skipped with a warning on stderr."""
    return {
        resource: Collection(_stored_objects(data_dir, resource)) for resource in BILLING_RESOURCES
    }


def _stored_objects(data_dir: Path | str, resource: str) -> list[StoredObject]:
    """The objects of `<data_dir>/<resource>.jsonl`, the last copy of each id winning.

    The server reads the files its own simple way (not with the pipeline's export
    reader), so the pipeline's reader is tested against an independent server.
    """
    path = Path(data_dir) / f"{resource}.jsonl"
    if not path.is_file():
        return []
    latest: dict[str, StoredObject] = {}
    for line_no, line in enumerate(path.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines(), 1):
        stored = _stored_object(line, resource)
        if isinstance(stored, str):
            if line.strip():
                print(
                    f"billing-api: skipping {path.name} line {line_no}: {stored}", file=sys.stderr
                )
            continue
        latest[stored.id] = stored
    return list(latest.values())


def _stored_object(line: bytes, resource: str) -> StoredObject | str:
    """One export line as a stored object, or why the server skips it."""
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"not a JSON line ({error})"
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        return "not an object with an id"
    created = obj.get("created") or 0  # deleted customers have none
    if type(created) is not int:
        return f"'created' is not unix seconds: {created!r}"
    status = obj.get("status") if resource == "subscriptions" else None
    return StoredObject(created, obj["id"], status, line.strip())


class BadRequest(Exception):
    """A request the API answers with 400 and this message."""


class BillingApi:
    """The request logic, apart from the HTTP plumbing: loaded data, key, faults, counts."""

    def __init__(
        self,
        data_dir: Path | str,
        api_key: str,
        *,
        rate_limit_share: float = 0.0,
        error_share: float = 0.0,
        retry_after: int = 1,
        fault_seed: int = 0,
    ) -> None:
        if not api_key:
            raise ValueError("the billing API needs a non-empty api_key")
        if min(rate_limit_share, error_share) < 0 or rate_limit_share + error_share > 1:
            raise ValueError("rate_limit_share and error_share must be >= 0 and sum to <= 1")
        self.collections = load_collections(data_dir)
        self.rate_limit_share = rate_limit_share
        self.error_share = error_share
        self.retry_after = retry_after
        self.status_counts: Counter[int] = Counter()
        self._expected_auth = f"Bearer {api_key}".encode()
        self._faults = random.Random(fault_seed)
        self._lock = threading.Lock()

    def counts(self) -> Counter[int]:
        """How many answers of each HTTP status have been given so far."""
        with self._lock:
            return Counter(self.status_counts)

    def answer(self, target: str, authorization: str | None) -> tuple[int, dict, bytes]:
        """Status, extra headers and JSON body for `GET target`."""
        status, headers, body = self._answer(target, authorization)
        with self._lock:
            self.status_counts[status] += 1
        return status, headers, body

    def _answer(self, target: str, authorization: str | None) -> tuple[int, dict, bytes]:
        fault = self._draw_fault()
        if fault == 429:
            message = "Too many requests hit the API too quickly."
            return 429, {"Retry-After": str(self.retry_after)}, _error("rate_limit", message)
        if fault == 500:
            return 500, {}, _error("api_error", "An unexpected error occurred (simulated).")
        if not authorization:
            message = "You did not provide an API key: use 'Authorization: Bearer <key>'."
            return 401, {}, _error("invalid_request_error", message)
        if not hmac.compare_digest(authorization.encode(), self._expected_auth):
            return 401, {}, _error("invalid_request_error", "Invalid API key provided.")
        url = urlsplit(target)
        resource = url.path.removeprefix("/v1/").rstrip("/")
        if not url.path.startswith("/v1/") or resource not in self.collections:
            message = f"Unrecognized request URL (GET: {url.path})."
            return 404, {}, _error("invalid_request_error", message)
        try:
            return 200, {}, self._list_page(resource, url.path, parse_qs(url.query, True))
        except BadRequest as error:
            return 400, {}, _error("invalid_request_error", str(error))

    def _draw_fault(self) -> int | None:
        if not (self.rate_limit_share or self.error_share):
            return None
        with self._lock:
            draw = self._faults.random()
        if draw < self.rate_limit_share:
            return 429
        if draw < self.rate_limit_share + self.error_share:
            return 500
        return None

    def _list_page(self, resource: str, path: str, query: dict[str, list[str]]) -> bytes:
        params = {name: values[-1] for name, values in query.items()}
        allowed = _COMMON_PARAMS | ({"status"} if resource == "subscriptions" else set())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise BadRequest(f"Received unknown parameter: {unknown[0]}")
        collection = self.collections[resource]
        limit = _integer(params, "limit", 10)
        if not 1 <= limit <= 100:
            raise BadRequest(f"Invalid limit: must be between 1 and 100, not {limit}.")
        starting_after = params.get("starting_after")
        if starting_after is not None and starting_after not in collection.position:
            raise BadRequest(f"No such object for starting_after: '{starting_after}'.")
        statuses = _statuses(params.get("status")) if resource == "subscriptions" else None
        found, has_more = collection.page(
            limit,
            starting_after,
            _integer(params, "created[gte]", None),
            _integer(params, "created[lt]", None),
            statuses,
        )
        return (
            b'{"object": "list", "data": ['
            + b", ".join(obj.json for obj in found)
            + b'], "has_more": '
            + (b"true" if has_more else b"false")
            + b', "url": '
            + json.dumps(path).encode()
            + b"}"
        )


def _statuses(status: str | None) -> set[str] | None:
    """The subscription statuses a `status` parameter selects (None: all)."""
    if status is None:  # Stripe's default: every subscription that is not canceled
        return set(SUBSCRIPTION_STATUSES) - {"canceled"}
    if status in _STATUS_SETS:
        return _STATUS_SETS[status]
    if status in SUBSCRIPTION_STATUSES:
        return {status}
    choices = ", ".join((*SUBSCRIPTION_STATUSES, *_STATUS_SETS))
    raise BadRequest(f"Invalid status: must be one of {choices}.")


def _integer(params: dict[str, str], name: str, default: int | None) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"Invalid integer for {name}: '{value}'.") from None


def _error(error_type: str, message: str) -> bytes:
    return json.dumps({"error": {"type": error_type, "message": message}}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client pages through one connection
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # headers and body are two writes: don't wait for an ACK
    api: BillingApi  # set on the subclass each server makes

    def do_GET(self) -> None:
        status, headers, body = self.api.answer(self.path, self.headers.get("Authorization"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def make_server(api: BillingApi, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) that answers with `api`."""
    handler = type("BillingApiHandler", (_Handler,), {"api": api})
    return ThreadingHTTPServer((host, port), handler)


def _url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def serve_forever(
    data_dir: Path | str,
    port: int,
    api_key: str,
    host: str = "127.0.0.1",
    rate_limit_share: float = 0.0,
    error_share: float = 0.0,
    retry_after: int = 1,
    fault_seed: int = 0,
) -> None:
    """Serve `data_dir` until interrupted (Ctrl-C); prints the URL (never the key)."""
    api = BillingApi(
        data_dir,
        api_key,
        rate_limit_share=rate_limit_share,
        error_share=error_share,
        retry_after=retry_after,
        fault_seed=fault_seed,
    )
    with make_server(api, host, port) as server:
        counts = ", ".join(f"{len(api.collections[r].objects)} {r}" for r in BILLING_RESOURCES)
        print(f"billing API at {_url(server)} ({counts}); Ctrl-C stops it", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


class RunningBillingApi:
    """A billing API serving on a background thread; `stop()` (or leaving `with`) ends it."""

    def __init__(self, api: BillingApi, server: ThreadingHTTPServer) -> None:
        self.api = api
        self.url = _url(server)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"RunningBillingApi(url={self.url!r})"

    @property
    def status_counts(self) -> Counter[int]:
        """How many answers of each HTTP status the server has given so far."""
        return self.api.counts()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RunningBillingApi:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_in_background(
    data_dir: Path | str, api_key: str, port: int = 0, host: str = "127.0.0.1", **faults
) -> RunningBillingApi:
    """Load `data_dir` and serve it on a daemon thread (port 0: any free port).

    `faults` are BillingApi's knobs: rate_limit_share, error_share, retry_after, fault_seed.
    """
    api = BillingApi(data_dir, api_key, **faults)
    return RunningBillingApi(api, make_server(api, host, port))
