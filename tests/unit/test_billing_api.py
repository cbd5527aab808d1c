"""Billing API simulator over real HTTP: auth, Stripe paging, created windows, status rule, faults."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from factories import (
    BAD_INVOICE_LINES,
    KEY,
    SUBSCRIPTION_STATUSES,
    T0,
    WRONG_KEY,
    write_billing_export,
)

from churnhouse.devkit.billing_api import start_in_background


def newest_first(objects: list[dict]) -> list[str]:
    return [o["id"] for o in sorted(objects, key=lambda o: (o["created"], o["id"]), reverse=True)]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, dict[str, list[dict]]]:
    folder = tmp_path_factory.mktemp("billing")
    return folder, write_billing_export(folder)


@pytest.fixture(scope="module")
def api(export):
    with start_in_background(export[0], KEY) as running:
        yield running


@pytest.fixture(scope="module")
def session():
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {KEY}"
        yield http


def _get(session, api, path: str, **params) -> requests.Response:
    return session.get(api.url + path, params=params, timeout=10)


@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {WRONG_KEY}", f"Basic {KEY}", "Bearer "],
    ids=["missing-key", "wrong-key", "right-key-wrong-scheme", "empty-bearer"],
)
def test_a_missing_or_wrong_key_is_401_and_the_body_never_shows_a_key(api, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(api.url + "/v1/customers", headers=headers, timeout=10)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert KEY not in response.text and WRONG_KEY not in response.text


@pytest.mark.parametrize("limit", [1, 7, 100], ids=lambda n: f"limit-{n}")
def test_paging_returns_every_invoice_once_newest_first(api, session, export, limit):
    expected = newest_first(export[1]["invoices"])
    seen, pages, params = [], 0, {"limit": limit}
    while True:
        page = _get(session, api, "/v1/invoices", **params).json()
        pages += 1
        assert page["object"] == "list" and page["url"] == "/v1/invoices"
        assert len(page["data"]) == min(limit, len(expected) - len(seen))
        seen.extend(obj["id"] for obj in page["data"])
        if not page["has_more"]:
            break
        params["starting_after"] = seen[-1]
    assert seen == expected
    assert pages == -(-len(expected) // limit)


@pytest.mark.parametrize("resource", ["customers", "charges"])
def test_default_page_is_the_ten_newest(api, session, export, resource):
    page = _get(session, api, f"/v1/{resource}").json()
    assert [obj["id"] for obj in page["data"]] == newest_first(export[1][resource])[:10]
    assert page["has_more"] is True


def test_a_later_line_replaces_an_earlier_one_and_bad_lines_are_skipped(api, session):
    invoice = _get(session, api, "/v1/invoices", limit=1, starting_after="in_0008").json()
    assert [(obj["id"], obj["status"]) for obj in invoice["data"]] == [("in_0007", "void")]


def test_bad_lines_are_reported_on_stderr_when_loading(export, capsys):
    with start_in_background(export[0], KEY):
        pass
    warnings = capsys.readouterr().err.splitlines()
    # The server reads its files its own way: it names each skipped line, in its own words.
    assert [w.split(":")[0] for w in warnings] == ["billing-api" for _ in BAD_INVOICE_LINES]
    assert [w.split(": ")[1] for w in warnings] == [
        f"skipping invoices.jsonl line {line}" for line in BAD_INVOICE_LINES
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "Invalid limit"),
        ({"limit": 101}, "Invalid limit"),
        ({"limit": "ten"}, "Invalid integer for limit"),
        ({"starting_after": "in_9999"}, "No such object for starting_after: 'in_9999'"),
        ({"created[gte]": "yesterday"}, "Invalid integer for created[gte]"),
        ({"created[lt]": "1.5"}, "Invalid integer for created[lt]"),
        ({"refund": "re_0001"}, "Received unknown parameter: refund"),
        ({"ending_before": "in_9999"}, "No such object for ending_before: 'in_9999'"),
        ({"ending_before": "in_0002", "starting_after": "in_0001"}, "only specify one"),
        ({"expand[]": "customer"}, "paths starting with 'data.'"),
        ({"expand[]": "data.status"}, "cannot be expanded (status)"),
    ],
    ids=[
        "limit-0",
        "limit-101",
        "limit-not-a-number",
        "unknown-starting-after",
        "gte-not-a-number",
        "lt-not-an-integer",
        "unsupported-parameter",
        "unknown-ending-before",
        "both-cursors",
        "list-expand-without-data",
        "not-an-id-field",
    ],
)
def test_bad_parameters_are_400_with_a_stripe_error(api, session, params, message):
    response = _get(session, api, "/v1/invoices", **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert message in error["message"]


@pytest.mark.parametrize(
    ("gte_hours", "lt_hours"),
    [(10, 20), (0, 1), (None, 3), (120, None), (50, 50), (124, 125)],
    ids=["10h-to-20h", "first-hour", "before-3h", "from-120h", "empty-window", "last-hour"],
)
def test_created_window_includes_gte_and_excludes_lt(api, session, export, gte_hours, lt_hours):
    gte = None if gte_hours is None else T0 + gte_hours * 3_600
    lt = None if lt_hours is None else T0 + lt_hours * 3_600
    inside = [
        obj
        for obj in export[1]["invoices"]
        if (gte is None or obj["created"] >= gte) and (lt is None or obj["created"] < lt)
    ]
    params = {"limit": 100}
    if gte is not None:
        params["created[gte]"] = gte
    if lt is not None:
        params["created[lt]"] = lt
    seen = []
    while True:
        page = _get(session, api, "/v1/invoices", **params).json()
        seen.extend(obj["id"] for obj in page["data"])
        if not page["has_more"]:
            break
        params["starting_after"] = seen[-1]
    assert seen == newest_first(inside)
    if gte_hours == 10 and lt_hours == 20:  # pairs share each hour: both ends hold two invoices
        assert len(seen) == 20


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, {s for s in SUBSCRIPTION_STATUSES if s != "canceled"}),
        ("all", set(SUBSCRIPTION_STATUSES)),
        ("canceled", {"canceled"}),
        ("active", {"active"}),
        ("ended", {"canceled", "incomplete_expired"}),
    ],
    ids=["default-leaves-out-canceled", "all", "canceled-only", "active-only", "ended"],
)
def test_subscription_status_filter(api, session, export, status, expected):
    params = {"limit": 100} | ({"status": status} if status else {})
    page = _get(session, api, "/v1/subscriptions", **params).json()
    chosen = [obj for obj in export[1]["subscriptions"] if obj["status"] in expected]
    assert [obj["id"] for obj in page["data"]] == newest_first(chosen)


def test_an_unknown_subscription_status_is_400(api, session):
    response = _get(session, api, "/v1/subscriptions", status="cancelled")
    assert response.status_code == 400
    assert "Invalid status" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "path", ["/v1/refunds", "/v2/invoices", "/", "/v1/invoices/in_0001/payments"]
)
def test_an_unknown_path_is_404(api, session, path):
    response = session.get(api.url + path, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"Unrecognized request URL (GET: {path})."


def _statuses_of(export_folder: Path, count: int, **faults) -> tuple[list[int], list[str]]:
    """Statuses and Retry-After headers of `count` unauthenticated requests to a faulty server."""
    with start_in_background(export_folder, KEY, **faults) as running, requests.Session() as http:
        answers = [http.get(running.url + "/v1/charges", timeout=10) for _ in range(count)]
        assert running.status_counts == {
            status: sum(1 for a in answers if a.status_code == status)
            for status in {a.status_code for a in answers}
        }
    return (
        [a.status_code for a in answers],
        [a.headers["Retry-After"] for a in answers if a.status_code == 429],
    )


def test_faults_hit_any_request_in_their_shares_and_repeat_with_the_seed(export):
    faults = dict(rate_limit_share=0.3, error_share=0.2, retry_after=4, fault_seed=11)
    statuses, retry_afters = _statuses_of(export[0], 400, **faults)
    # Faults come before auth: these requests carry no key, the rest are 401.
    assert set(statuses) == {401, 429, 500}
    assert 0.22 < statuses.count(429) / 400 < 0.38
    assert 0.13 < statuses.count(500) / 400 < 0.27
    assert retry_afters == ["4"] * statuses.count(429)
    assert _statuses_of(export[0], 400, **faults)[0] == statuses


@pytest.mark.parametrize(
    "faults",
    [{"rate_limit_share": -0.1}, {"rate_limit_share": 0.6, "error_share": 0.5}],
    ids=["negative-share", "shares-above-one"],
)
def test_impossible_fault_shares_are_refused(export, faults):
    with pytest.raises(ValueError, match="rate_limit_share and error_share"):
        start_in_background(export[0], KEY, **faults)
