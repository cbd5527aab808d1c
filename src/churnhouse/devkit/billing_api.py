"""A Stripe-compatible billing API serving a billing export folder, for demos and tests.

It answers what the official `stripe` client uses (docs/sources.md section 2):

- lists `GET /v1/customers|subscriptions|invoices|charges|prices`, newest first, with
  `limit`, `starting_after`, `ending_before`, `created[gt|gte|lt|lte]`, `customer=`
  (subscriptions, invoices, charges), Stripe's `status` rule for subscriptions
  (canceled ones are left out unless asked for) and `active=` for prices; the
  customer list leaves deleted customers out;
- retrieve `GET /v1/<resource>/{id}` (404 with Stripe's error for an unknown id; a
  deleted customer, or one only named by other objects, is `{"id", "object":
  "customer", "deleted": true}`) and `GET /v1/invoices/{id}/lines`, paged;
- nested lists (`items`, `lines`) with `has_more` and `url`; an invoice embeds the
  lines its export copy embeds (at most 10), the rest come from `invoice_lines.jsonl`;
- `expand[]` (`expand[0]`, ... as the official client sends it) of `customer`,
  `subscription`, `invoice` and `price`, at any path (`data.customer` in lists,
  `parent.subscription_details.subscription` in the new shape);
- the `Stripe-Version` header chooses the object shape (before or from 2025-03-31,
  `stripe_shapes`); without it the account's default version answers.

Fault knobs answer a seeded share of requests with 429 (and a `Retry-After`) or 500,
before auth and paging, so retries can be tested.

The folder is read once at start (bad lines are skipped with a warning on stderr; a
later line replaces an earlier one with the same id). Each object is kept as its
original JSON text, not as a dict, so a quarter of a million invoices fit
comfortably; an object is parsed only when it is answered and must change on the
way out (its shape, its expansions, its embedded line list).
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
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from churnhouse.devkit.stripe_shapes import (
    CURRENT_API_VERSION,
    has_new_shape,
    in_shape,
    is_new_shape,
)

BILLING_RESOURCES = ("customers", "subscriptions", "invoices", "charges", "prices")
EMBEDDED_LINES_MAX = 10  # Stripe embeds at most this many lines in an invoice

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
_CREATED = ("created[gt]", "created[gte]", "created[lt]", "created[lte]")
_COMMON_PARAMS = {"limit", "starting_after", "ending_before", "expand", *_CREATED}
_LIST_PARAMS = {
    "customers": _COMMON_PARAMS,
    "subscriptions": _COMMON_PARAMS | {"status", "customer"},
    "invoices": _COMMON_PARAMS | {"customer", "subscription"},
    "charges": _COMMON_PARAMS | {"customer", "invoice"},
    "prices": _COMMON_PARAMS | {"active", "product"},
}
# An id field → the resource its object is retrieved from when expanded.
_EXPANDABLE = {
    "customer": "customers",
    "subscription": "subscriptions",
    "invoice": "invoices",
    "price": "prices",
}
_SINGULAR = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "prices": "price",
}


class StoredObject(NamedTuple):
    created: int
    id: str
    status: str | None  # subscriptions' status
    refs: tuple[tuple[str, str], ...]  # (field, id) filters can select on: customer, ...
    deleted: bool
    json: bytes


class Collection:
    """One resource's objects, newest first (`created` desc, then `id` desc)."""

    def __init__(self, objects: list[StoredObject]) -> None:
        self.objects = sorted(objects, key=lambda o: (o.created, o.id), reverse=True)
        self.position = {obj.id: index for index, obj in enumerate(self.objects)}
        self._minus_created = [-obj.created for obj in self.objects]  # ascending, for bisect

    def get(self, object_id: str) -> StoredObject | None:
        index = self.position.get(object_id)
        return None if index is None else self.objects[index]

    def page(
        self,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
        created_gte: int | None = None,
        created_lt: int | None = None,
        keep: Callable[[StoredObject], bool] | None = None,
    ) -> tuple[list[StoredObject], bool]:
        """Up to `limit` matching objects after `starting_after` (or just before
        `ending_before`, still newest first), and whether more match that way."""
        first, stop = 0, len(self.objects)
        if created_lt is not None:  # skip the objects newer than the window
            first = bisect_right(self._minus_created, -created_lt)
        if created_gte is not None:  # stop at the first object older than the window
            stop = bisect_right(self._minus_created, -created_gte)
        if ending_before is not None:
            found: list[StoredObject] = []
            for index in range(min(stop, self.position[ending_before]) - 1, first - 1, -1):
                obj = self.objects[index]
                if keep is None or keep(obj):
                    if len(found) == limit:
                        return found[::-1], True
                    found.append(obj)
            return found[::-1], False
        if starting_after is not None:
            first = max(first, self.position[starting_after] + 1)
        found = []
        for index in range(first, stop):
            obj = self.objects[index]
            if keep is None or keep(obj):
                if len(found) == limit:
                    return found, True
                found.append(obj)
        return found, False


def load_collections(data_dir: Path | str) -> dict[str, Collection]:
    """Every resource of an export folder; bad lines are skipped with a warning on stderr."""
    return {
        resource: Collection(_stored_objects(data_dir, resource)) for resource in BILLING_RESOURCES
    }


def load_extra_lines(data_dir: Path | str) -> dict[str, list[tuple[str, bytes]]]:
    """invoice_lines.jsonl: invoice id → its lines beyond those the invoice embeds, in order."""
    path = Path(data_dir) / "invoice_lines.jsonl"
    extra: dict[str, list[tuple[str, bytes]]] = {}
    if not path.is_file():
        return extra
    for line_no, line in enumerate(path.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines(), 1):
        try:
            obj = json.loads(line)
            invoice, line_id = obj["invoice"], obj["id"]
            if not isinstance(invoice, str) or not isinstance(line_id, str):
                raise TypeError("'invoice' and 'id' are not texts")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            if line.strip():
                print(
                    f"billing-api: skipping {path.name} line {line_no}: not a line object "
                    f"with an invoice ({error})",
                    file=sys.stderr,
                )
            continue
        extra.setdefault(invoice, []).append((line_id, line.strip()))
    return extra


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
    refs = tuple(
        (name, ref)
        for name, ref in (
            ("customer", _ref_id(obj.get("customer"))),
            ("subscription", _ref_id(_invoice_subscription(obj))),
            ("invoice", _ref_id(obj.get("invoice"))),
            ("product", _ref_id(obj.get("product"))),
            ("active", _flag(obj.get("active"))),
        )
        if ref is not None
    )
    return StoredObject(created, obj["id"], status, refs, obj.get("deleted") is True, line.strip())


def _ref_id(value) -> str | None:
    """The id an id field holds, also when the export holds the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _flag(value) -> str | None:
    return None if not isinstance(value, bool) else ("true" if value else "false")


def _invoice_subscription(obj: dict):
    if obj.get("object") != "invoice":
        return None
    if "subscription" in obj:
        return obj["subscription"]
    return ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")


class BadRequest(Exception):
    """A request the API answers with 400 and this message."""


class NotFound(Exception):
    """A request the API answers with 404 and this message."""


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
        default_api_version: str | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("the billing API needs a non-empty api_key")
        if min(rate_limit_share, error_share) < 0 or rate_limit_share + error_share > 1:
            raise ValueError("rate_limit_share and error_share must be >= 0 and sum to <= 1")
        self.default_api_version = default_api_version or CURRENT_API_VERSION
        is_new_shape(self.default_api_version)  # a wrong version fails here, not per request
        self.collections = load_collections(data_dir)
        self.extra_lines = load_extra_lines(data_dir)
        self.named_customers = {
            ref
            for resource in ("subscriptions", "invoices", "charges")
            for obj in self.collections[resource].objects
            for name, ref in obj.refs
            if name == "customer"
        }
        self._prices: dict[str, dict] | None = None
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

    @property
    def prices(self) -> dict[str, dict]:
        """Price id → price object (few; parsed once), for lines converted to the old shape."""
        if self._prices is None:
            objects = self.collections["prices"].objects
            self._prices = {obj.id: json.loads(obj.json) for obj in objects}
        return self._prices

    def answer(
        self, target: str, authorization: str | None, stripe_version: str | None = None
    ) -> tuple[int, dict, bytes]:
        """Status, extra headers and JSON body for `GET target`."""
        status, headers, body = self._answer(target, authorization, stripe_version)
        with self._lock:
            self.status_counts[status] += 1
        return status, headers, body

    def _answer(
        self, target: str, authorization: str | None, stripe_version: str | None
    ) -> tuple[int, dict, bytes]:
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
        parts = url.path.removeprefix("/v1/").rstrip("/").split("/")
        if not url.path.startswith("/v1/") or parts[0] not in self.collections or len(parts) > 3:
            return 404, {}, _unrecognized(url.path)
        if len(parts) == 3 and (parts[0], parts[2]) != ("invoices", "lines"):
            return 404, {}, _unrecognized(url.path)
        version = stripe_version or self.default_api_version
        try:
            new = is_new_shape(version)
        except ValueError:
            message = f"Invalid Stripe API version: {version}"
            return 400, {}, _error("invalid_request_error", message)
        try:
            params = _params(url.query)
            if len(parts) == 1:
                body = self._list_page(parts[0], url.path, params, new)
            elif len(parts) == 2:
                body = self._retrieve(parts[0], parts[1], params, new)
            else:
                body = self._lines_page(parts[1], url.path, params, new)
            return 200, {"Stripe-Version": version}, body
        except BadRequest as error:
            return 400, {}, _error("invalid_request_error", str(error))
        except NotFound as error:
            return 404, {}, _error("invalid_request_error", str(error), code="resource_missing")
        except KeyError as error:  # a new-shape line whose price no price object gives
            message = f"cannot answer in API version {version}: {error.args[0]}"
            return 500, {}, _error("api_error", message)

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

    # --- lists --------------------------------------------------------------------------------

    def _list_page(self, resource: str, path: str, params: dict, new: bool) -> bytes:
        unknown = sorted(set(params) - _LIST_PARAMS[resource])
        if unknown:
            raise BadRequest(f"Received unknown parameter: {unknown[0]}")
        collection = self.collections[resource]
        limit, starting_after, ending_before = _cursor(params, collection.position)
        gte, lt = _created_window(params)
        keep = _keep(resource, params)
        found, has_more = collection.page(limit, starting_after, ending_before, gte, lt, keep)
        expand = _expand_paths(params, in_list=True)
        data = [self._render(resource, obj, new, expand) for obj in found]
        return _list_body(data, has_more, path)

    def _lines_page(self, invoice_id: str, path: str, params: dict, new: bool) -> bytes:
        unknown = sorted(set(params) - {"limit", "starting_after", "ending_before", "expand"})
        if unknown:
            raise BadRequest(f"Received unknown parameter: {unknown[0]}")
        stored = self.collections["invoices"].get(invoice_id)
        if stored is None:
            raise NotFound(f"No such invoice: '{invoice_id}'")
        lines = self._all_lines(json.loads(stored.json))
        position = {line.get("id"): index for index, line in enumerate(lines)}
        limit, starting_after, ending_before = _cursor(params, position)
        if ending_before is not None:
            stop = position[ending_before]
            chosen, has_more = lines[max(0, stop - limit) : stop], stop - limit > 0
        else:
            first = 0 if starting_after is None else position[starting_after] + 1
            chosen, has_more = lines[first : first + limit], first + limit < len(lines)
        expand = _expand_paths(params, in_list=True)
        data = [
            json.dumps(self._expanded(in_shape(line, new, self.prices), expand, new)).encode()
            for line in chosen
        ]
        return _list_body(data, has_more, path)

    def _all_lines(self, invoice: dict) -> list[dict]:
        """Every line of an export invoice: those it embeds, then those of invoice_lines.jsonl."""
        embedded = list(((invoice.get("lines") or {}).get("data")) or [])
        seen = {line.get("id") for line in embedded}
        rest = [
            json.loads(text)
            for line_id, text in self.extra_lines.get(invoice["id"], [])
            if line_id not in seen
        ]
        return embedded + rest

    # --- single objects ------------------------------------------------------------------------

    def _retrieve(self, resource: str, object_id: str, params: dict, new: bool) -> bytes:
        unknown = sorted(set(params) - {"expand"})
        if unknown:
            raise BadRequest(f"Received unknown parameter: {unknown[0]}")
        obj = self._object(resource, object_id, new, ())
        if obj is None:
            raise NotFound(f"No such {_SINGULAR[resource]}: '{object_id}'")
        return json.dumps(self._expanded(obj, _expand_paths(params, in_list=False), new)).encode()

    def _object(self, resource: str, object_id: str, new: bool, expand) -> dict | None:
        stored = self.collections[resource].get(object_id)
        if resource == "customers" and (
            (stored is None and object_id in self.named_customers)
            or (stored is not None and stored.deleted)
        ):
            return {"id": object_id, "object": "customer", "deleted": True}
        if stored is None:
            return None
        return json.loads(self._render(resource, stored, new, expand))

    def _render(self, resource: str, stored: StoredObject, new: bool, expand) -> bytes:
        """One stored object as answered: in the asked shape, expanded, lines listed right."""
        if resource in ("customers", "charges", "prices") and not expand:
            return stored.json
        obj = json.loads(stored.json)
        if resource == "invoices":
            obj = self._with_line_list(obj)
        elif resource == "subscriptions":
            items = obj.get("items")
            if isinstance(items, dict):
                items.setdefault("has_more", False)
                items.setdefault("url", f"/v1/subscription_items?subscription={obj['id']}")
        if has_new_shape(obj) is not None:
            obj = in_shape(obj, new, self.prices)
        return json.dumps(self._expanded(obj, expand, new)).encode()

    def _with_line_list(self, invoice: dict) -> dict:
        """The invoice's `lines` as Stripe lists them: the lines the export embeds (at most
        10), `has_more` when there are more, and the url that pages through them all."""
        lines = invoice.get("lines") if isinstance(invoice.get("lines"), dict) else {}
        embedded = list(lines.get("data") or [])[:EMBEDDED_LINES_MAX]
        total = len(self._all_lines(invoice)) if self.extra_lines.get(invoice["id"]) else None
        has_more = bool(lines.get("has_more")) or len(lines.get("data") or []) > len(embedded)
        if total is not None:
            has_more = total > len(embedded)
        invoice["lines"] = {
            **lines,
            "object": "list",
            "data": embedded,
            "has_more": has_more,
            "url": f"/v1/invoices/{invoice['id']}/lines",
        }
        return invoice

    def _expanded(self, obj: dict, paths: list[list[str]], new: bool) -> dict:
        for path in paths:
            self._expand_at(obj, path, new, ".".join(path))
        return obj

    def _expand_at(self, value, path: list[str], new: bool, whole: str) -> None:
        if isinstance(value, dict) and value.get("object") == "list" and path[0] != "data":
            return self._expand_at(value, ["data", *path], new, whole)
        if not isinstance(value, dict):
            return None
        head, rest = path[0], path[1:]
        if head == "data" and isinstance(value.get("data"), list) and rest:
            for item in value["data"]:
                self._expand_at(item, rest, new, whole)
            return None
        if head not in value:
            return None
        if rest:
            return self._expand_at(value[head], rest, new, whole)
        if head not in _EXPANDABLE:
            raise BadRequest(f"This property cannot be expanded ({whole}).")
        ref = value[head]
        if isinstance(ref, str):
            found = self._object(_EXPANDABLE[head], ref, new, ())
            if found is not None:
                value[head] = found
        return None


def _params(query: str) -> dict[str, str | list[str]]:
    """Query parameters: the last value of each, `expand[]` / `expand[0]`... as one list."""
    params: dict[str, str | list[str]] = {}
    expand: list[str] = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "expand[]" or (name.startswith("expand[") and name[7:-1].isdigit()):
            expand.append(value)
        else:
            params[name] = value
    if expand:
        params["expand"] = expand
    return params


def _cursor(params: dict, position) -> tuple[int, str | None, str | None]:
    limit = _integer(params, "limit", 10)
    if not 1 <= limit <= 100:
        raise BadRequest(f"Invalid limit: must be between 1 and 100, not {limit}.")
    starting_after, ending_before = params.get("starting_after"), params.get("ending_before")
    if starting_after is not None and ending_before is not None:
        raise BadRequest(
            "You may only specify one of these parameters: ending_before, starting_after."
        )
    for name, cursor in (("starting_after", starting_after), ("ending_before", ending_before)):
        if cursor is not None and cursor not in position:
            raise BadRequest(f"No such object for {name}: '{cursor}'.")
    return limit, starting_after, ending_before


def _created_window(params: dict) -> tuple[int | None, int | None]:
    """created[gt|gte|lt|lte] as one half-open window [gte, lt) of Unix seconds."""
    lows = [_integer(params, "created[gte]", None), _integer(params, "created[gt]", None)]
    highs = [_integer(params, "created[lt]", None), _integer(params, "created[lte]", None)]
    if lows[1] is not None:
        lows[1] += 1
    if highs[1] is not None:
        highs[1] += 1
    low = max((x for x in lows if x is not None), default=None)
    high = min((x for x in highs if x is not None), default=None)
    return low, high


def _keep(resource: str, params: dict) -> Callable[[StoredObject], bool] | None:
    """The filter a list applies beyond its created window, None for none."""
    wanted = {
        name: params[name]
        for name in ("customer", "subscription", "invoice", "product", "active")
        if name in params
    }
    if "active" in wanted and wanted["active"] not in ("true", "false"):
        raise BadRequest(f"Invalid boolean: {wanted['active']}")
    statuses = _statuses(params.get("status")) if resource == "subscriptions" else None
    hide_deleted = resource == "customers"
    if not wanted and statuses is None and not hide_deleted:
        return None

    def keep(obj: StoredObject) -> bool:
        if hide_deleted and obj.deleted:
            return False
        if statuses is not None and obj.status not in statuses:
            return False
        refs = dict(obj.refs)
        return all(refs.get(name) == value for name, value in wanted.items())

    return keep


def _expand_paths(params: dict, in_list: bool) -> list[list[str]]:
    paths = []
    for text in params.get("expand", []):
        path = text.split(".")
        if in_list and path[0] != "data":
            raise BadRequest(
                f"Expanding a list needs paths starting with 'data.': did you mean data.{text}?"
            )
        paths.append(path[1:] if in_list else path)
    return paths


def _list_body(data: list[bytes], has_more: bool, path: str) -> bytes:
    return (
        b'{"object": "list", "data": ['
        + b", ".join(data)
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


def _integer(params: dict, name: str, default: int | None) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid integer for {name}: '{value}'.") from None


def _unrecognized(path: str) -> bytes:
    return _error("invalid_request_error", f"Unrecognized request URL (GET: {path}).")


def _error(error_type: str, message: str, code: str | None = None) -> bytes:
    error = {"type": error_type, "message": message}
    if code:
        error["code"] = code
    return json.dumps({"error": error}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client pages through one connection
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # headers and body are two writes: don't wait for an ACK
    api: BillingApi  # set on the subclass each server makes

    def do_GET(self) -> None:
        status, headers, body = self.api.answer(
            self.path, self.headers.get("Authorization"), self.headers.get("Stripe-Version")
        )
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
    default_api_version: str | None = None,
) -> None:
    """Serve `data_dir` until interrupted (Ctrl-C); prints the URL (never the key)."""
    api = BillingApi(
        data_dir,
        api_key,
        rate_limit_share=rate_limit_share,
        error_share=error_share,
        retry_after=retry_after,
        fault_seed=fault_seed,
        default_api_version=default_api_version,
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
    data_dir: Path | str, api_key: str, port: int = 0, host: str = "127.0.0.1", **options
) -> RunningBillingApi:
    """Load `data_dir` and serve it on a daemon thread (port 0: any free port).

    `options` are BillingApi's knobs: rate_limit_share, error_share, retry_after, fault_seed,
    default_api_version.
    """
    api = BillingApi(data_dir, api_key, **options)
    return RunningBillingApi(api, make_server(api, host, port))
