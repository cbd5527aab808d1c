"""Billing client against the real simulator over HTTP, and the export-folder reader."""

from __future__ import annotations

import logging
import socket

import pytest
from factories import BAD_INVOICE_LINES, KEY, T0, WRONG_KEY, write_billing_export

from churnhouse.devkit.billing_api import start_in_background
from churnhouse.errors import PermanentError
from churnhouse.sources.billing import (
    RESOURCES,
    BillingApiClient,
    BillingApiError,
    BillingApiRejected,
    iter_export_objects,
    latest_by_id,
)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("billing")
    return folder, write_billing_export(folder)


@pytest.fixture(scope="module")
def api(export):
    with start_in_background(export[0], KEY) as running:
        yield running


class SleepRecorder(list):
    """Stands in for time.sleep: remembers each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _ids(objects) -> list[str]:
    return [obj["id"] for obj in objects]


@pytest.mark.parametrize("resource", RESOURCES)
def test_client_reads_every_object_once_including_canceled_subscriptions(api, export, resource):
    with BillingApiClient(api.url, KEY, page_size=7) as client:
        got = _ids(client.iter_objects(resource))
    assert len(got) == len(set(got))
    assert set(got) == set(_ids(export[1][resource]))


def test_client_passes_the_created_window(api, export):
    gte, lt = T0 + 10 * 3_600, T0 + 60 * 3_600
    with BillingApiClient(api.url, KEY, page_size=9) as client:
        got = _ids(client.iter_objects("invoices", created_gte=gte, created_lt=lt))
    expected = [obj for obj in export[1]["invoices"] if gte <= obj["created"] < lt]
    assert sorted(got) == sorted(_ids(expected))
    assert len(got) == 100


def test_faults_are_retried_until_the_set_is_complete(export, caplog):
    sleep = SleepRecorder()
    faults = dict(rate_limit_share=0.3, error_share=0.2, retry_after=3, fault_seed=7)
    caplog.set_level(logging.WARNING, logger="churnhouse.billing")
    with (
        start_in_background(export[0], KEY, **faults) as running,
        BillingApiClient(running.url, KEY, page_size=10, sleep=sleep) as client,
    ):
        got = _ids(client.iter_objects("invoices"))
        counts = running.status_counts
    assert sorted(got) == sorted(_ids(export[1]["invoices"]))
    assert len(got) == len(set(got)) == 250
    assert counts[200] == 25  # one answered request per page
    assert counts[429] > 0 and counts[500] > 0
    retries = [r.getMessage() for r in caplog.records if r.name == "churnhouse.billing"]
    assert len(retries) == len(sleep) == counts[429] + counts[500]
    rate_limited = [line for line in retries if "HTTP 429" in line]
    assert len(rate_limited) == counts[429]
    assert all("retrying in 3.0 s" in line for line in rate_limited)
    assert sleep.count(3.0) == counts[429]
    assert not any(KEY in line for line in retries)


@pytest.mark.parametrize(
    ("base_suffix", "key", "resource", "extra", "status", "message"),
    [
        ("", WRONG_KEY, "invoices", None, 401, "Invalid API key provided"),
        ("", KEY, "subscriptions", {"status": "gone"}, 400, "Invalid status"),
        ("/stripe", KEY, "charges", None, 404, "Unrecognized request URL"),
    ],
    ids=["wrong-key-401", "bad-parameter-400", "wrong-base-url-404"],
)
def test_a_final_4xx_fails_at_once_naming_status_path_and_message(
    export, base_suffix, key, resource, extra, status, message
):
    sleep = SleepRecorder()
    with (
        start_in_background(export[0], KEY) as running,
        BillingApiClient(running.url + base_suffix, key, sleep=sleep) as client,
    ):
        with pytest.raises(BillingApiError) as raised:
            next(client.iter_objects(resource, extra_params=extra))
        counts = running.status_counts
    error = raised.value
    assert isinstance(error, BillingApiRejected) and isinstance(error, PermanentError)
    assert error.status == status
    assert f"/v1/{resource}" in str(error)
    assert f"HTTP {status}" in str(error) and message in str(error)
    assert sleep == [] and counts == {status: 1}
    for secret in (KEY, WRONG_KEY):
        assert secret not in str(error) and secret not in repr(client)


@pytest.mark.parametrize(
    ("faults", "last"),
    [
        ({"error_share": 1.0}, "HTTP 500"),
        ({"rate_limit_share": 1.0, "retry_after": 2}, "HTTP 429"),
    ],
    ids=["always-500", "always-429"],
)
def test_retries_exhausted_give_a_clear_retryable_error(export, faults, last):
    sleep = SleepRecorder()
    with (
        start_in_background(export[0], KEY, **faults) as running,
        BillingApiClient(running.url, KEY, max_attempts=3, sleep=sleep) as client,
    ):
        with pytest.raises(BillingApiError) as raised:
            list(client.iter_objects("charges"))
        counts = running.status_counts
    message = str(raised.value)
    assert not isinstance(raised.value, PermanentError)
    assert message.startswith("GET /v1/charges: gave up after 3 attempts; last answer " + last)
    assert sum(counts.values()) == 3 and len(sleep) == 2
    if last == "HTTP 429":
        assert sleep == [2.0, 2.0]
    else:  # exponential back-off with jitter: half to all of 0.5 s, then of 1 s
        assert 0.25 <= sleep[0] <= 0.5 and 0.5 <= sleep[1] <= 1.0


def test_a_server_that_is_not_there_is_retried_then_named():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleep = SleepRecorder()
    client = BillingApiClient(f"http://127.0.0.1:{port}", KEY, max_attempts=2, sleep=sleep)
    with pytest.raises(BillingApiError, match=r"gave up after 2 attempts; last answer Connection"):
        list(client.iter_objects("customers"))
    assert len(sleep) == 1


def test_an_unknown_resource_is_refused_before_any_request():
    client = BillingApiClient("http://127.0.0.1:9", KEY)
    with pytest.raises(ValueError, match="unknown billing resource 'refunds'"):
        next(client.iter_objects("refunds"))


def test_export_reader_yields_bad_lines_with_their_reasons(export):
    lines = list(iter_export_objects(export[0], "invoices"))
    bad = {line.line_no: line.error for line in lines if line.error}
    assert bad == BAD_INVOICE_LINES
    assert all(line.obj is None and line.raw for line in lines if line.error)
    assert lines[100].raw == '{"id": "in_broken", "amou'
    assert len(lines) == 250 + 3 + 1  # the blank line 254 is not a record


def test_latest_by_id_keeps_the_later_copy_of_a_resent_invoice(export):
    objects = [line.obj for line in iter_export_objects(export[0], "invoices") if line.obj]
    latest = latest_by_id(objects)
    assert len(objects) == 251 and len(latest) == 250
    assert latest["in_0007"]["status"] == "void"
    assert list(latest)[:9] == [f"in_{i:04d}" for i in range(9)]  # first-seen order


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            b'{"id": "x", }',
            "invalid JSON at column 13: Expecting property name enclosed in double quotes",
        ),
        (b'"in_1"', "not a JSON object (a str)"),
        (b'{"id": ""}', "no 'id'"),
        (b'{"id": 42}', "no 'id'"),
        (b'{"id": "in_\xff"}', "not UTF-8"),
    ],
    ids=["invalid-json", "json-string", "empty-id", "numeric-id", "not-utf8"],
)
def test_each_kind_of_bad_line_is_named_and_the_file_goes_on(tmp_path, line, reason):
    (tmp_path / "charges.jsonl").write_bytes(
        b'\xef\xbb\xbf{"id": "ch_1"}\r\n' + line + b'\n\n{"id": "ch_2"}'
    )
    lines = list(iter_export_objects(tmp_path, "charges"))
    assert [(ln.line_no, ln.obj) for ln in lines] == [
        (1, {"id": "ch_1"}),
        (2, None),
        (4, {"id": "ch_2"}),
    ]
    assert lines[1].error.startswith(reason)


def test_a_missing_file_yields_nothing_but_a_missing_folder_is_an_error(tmp_path):
    (tmp_path / "charges.jsonl").write_text('{"id": "ch_1"}\n', encoding="utf-8")
    assert list(iter_export_objects(tmp_path, "customers")) == []
    with pytest.raises(FileNotFoundError, match="billing export folder"):
        list(iter_export_objects(tmp_path / "nowhere", "charges"))
