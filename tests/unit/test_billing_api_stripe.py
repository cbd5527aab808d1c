"""The official `stripe` Python client against `churnhouse billing-api` over a simulated bundle.

A real server on a real port, the real client library (pinned in requirements.in):
every resource auto-paged, retrieved, expanded, filtered and paged backwards; cut-short
invoice line lists auto-paged; and the `Stripe-Version` the client sends choosing the
object shape, whatever shape each object was exported in (the bundle's account moved to
the new shape mid-history, so its export holds both).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stripe

from churnhouse.devkit.billing_api import start_in_background
from churnhouse.devkit.simulator import simulate
from churnhouse.devkit.stripe_shapes import CURRENT_API_VERSION, OLD_API_VERSION

KEY = "sk_test_churnhouse_stripe_client"
BUNDLE = {"customers": 60, "months": 12, "start": "2024-01", "seed": 1}
UPGRADE_DAY = "2024-06-01"


def jsonl(bundle: Path, name: str) -> list[dict]:
    path = bundle / "billing" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stripe_bundle")
    simulate(out=out, **BUNDLE, stripe_upgrade_at=UPGRADE_DAY)
    return out


@pytest.fixture(scope="module")
def files(bundle) -> dict[str, list[dict]]:
    names = ("customers", "subscriptions", "invoices", "charges", "prices", "invoice_lines")
    return {name: jsonl(bundle, name) for name in names}


@pytest.fixture(scope="module")
def server(bundle):
    with start_in_background(bundle / "billing", KEY) as running:
        yield running


def client_for(server, version: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        KEY, base_addresses={"api": server.url}, stripe_version=version, max_network_retries=0
    )


@pytest.fixture(scope="module")
def client(server) -> stripe.StripeClient:
    return client_for(server)


@pytest.fixture(scope="module")
def old_client(server) -> stripe.StripeClient:
    return client_for(server, OLD_API_VERSION)


def newest_first(objects: list[dict]) -> list[str]:
    return [o["id"] for o in sorted(objects, key=lambda o: (o["created"], o["id"]), reverse=True)]


def test_the_bundle_holds_both_shapes_and_what_the_tests_need(files):
    invoices = files["invoices"]
    assert {"parent" in i for i in invoices} == {True, False}, "an upgrade mid-history"
    assert any(i["lines"]["has_more"] for i in invoices) and files["invoice_lines"]
    named = {i["customer"] for i in invoices}
    assert named - {c["id"] for c in files["customers"]}, "a deleted customer left out"
    assert any(c.get("deleted") for c in files["customers"]), "a deleted customer listed"


@pytest.mark.parametrize(
    ("resource", "params"),
    [
        ("customers", {}),
        ("subscriptions", {"status": "all"}),
        ("invoices", {}),
        ("charges", {}),
        ("prices", {}),
    ],
    ids=["customers", "subscriptions", "invoices", "charges", "prices"],
)
def test_auto_paging_lists_every_object_newest_first(client, files, resource, params):
    service = getattr(client.v1, resource)
    seen = [obj.id for obj in service.list(params={"limit": 7, **params}).auto_paging_iter()]
    expected = files[resource]
    if resource == "customers":  # Stripe's list leaves deleted customers out
        expected = [c for c in expected if not c.get("deleted")]
    assert seen == newest_first(expected)
    assert len(seen) == len(expected) > 7


def test_retrieve_by_id_and_unknown_ids_are_resource_missing(client, files):
    for resource, service in (
        ("subscriptions", client.v1.subscriptions),
        ("invoices", client.v1.invoices),
        ("charges", client.v1.charges),
        ("prices", client.v1.prices),
    ):
        wanted = files[resource][len(files[resource]) // 2]
        got = service.retrieve(wanted["id"])
        assert (got.id, got.created if resource != "prices" else None) == (
            wanted["id"],
            wanted["created"] if resource != "prices" else None,
        )
    listed = next(c for c in files["customers"] if not c.get("deleted"))
    assert client.v1.customers.retrieve(listed["id"]).email == listed["email"]
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.retrieve("in_does_not_exist")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert "No such invoice: 'in_does_not_exist'" in str(missing.value)


def test_deleted_customers_retrieve_as_deleted_whether_listed_or_not(client, files):
    listed_deleted = [c["id"] for c in files["customers"] if c.get("deleted")]
    left_out = sorted(
        {i["customer"] for i in files["invoices"]} - {c["id"] for c in files["customers"]}
    )
    for customer_id in [*listed_deleted, *left_out]:
        customer = client.v1.customers.retrieve(customer_id)
        assert customer.to_dict() == {"id": customer_id, "object": "customer", "deleted": True}


def test_expand_turns_ids_into_objects_in_lists_and_retrieves(client, old_client, files):
    page = client.v1.invoices.list(params={"limit": 5, "expand": ["data.customer"]})
    for invoice in page.data:
        assert invoice.customer.object == "customer" and invoice.customer.id.startswith("cus_")
    invoice_id = files["invoices"][-1]["id"]
    new = client.v1.invoices.retrieve(
        invoice_id,
        params={"expand": ["customer", "parent.subscription_details.subscription"]},
    )
    subscription = new.parent.subscription_details.subscription
    assert subscription.object == "subscription" and subscription.customer == new.customer.id
    old = old_client.v1.invoices.retrieve(invoice_id, params={"expand": ["subscription"]})
    assert old.subscription.id == subscription.id and old.subscription.object == "subscription"
    charge = files["charges"][0]
    expanded = client.v1.charges.retrieve(charge["id"], params={"expand": ["invoice"]})
    assert expanded.invoice.id == charge["invoice"] and expanded.invoice.object == "invoice"
    line = client.v1.invoices.line_items.list(
        invoice_id, params={"expand": ["data.pricing.price_details.price"]}
    ).data[0]
    assert line.pricing.price_details.price.object == "price"
    assert line.pricing.price_details.price.recurring.interval in {"month", "year", "week", "day"}


def test_ending_before_pages_backwards_to_the_newest(client, files):
    order = newest_first(files["invoices"])
    cursor = order[len(order) // 2]
    listed = client.v1.invoices.list(params={"limit": 6, "ending_before": cursor})
    seen = [invoice.id for invoice in listed.auto_paging_iter()]
    assert seen == order[: len(order) // 2][::-1], "the client walks backwards, oldest first"


def test_customer_filter_lists_only_that_customers_objects(client, files):
    customer = max(
        {i["customer"] for i in files["invoices"]},
        key=lambda c: sum(i["customer"] == c for i in files["invoices"]),
    )
    for resource in ("invoices", "charges", "subscriptions"):
        service = getattr(client.v1, resource)
        params = {"customer": customer, "limit": 3}
        if resource == "subscriptions":
            params["status"] = "all"
        seen = [obj.id for obj in service.list(params=params).auto_paging_iter()]
        expected = [obj for obj in files[resource] if obj["customer"] == customer]
        assert seen == newest_first(expected) and seen, resource


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_created_filters_are_strict_or_inclusive_as_named(client, files, op):
    moment = sorted(i["created"] for i in files["invoices"])[len(files["invoices"]) // 3]
    chosen = [
        i
        for i in files["invoices"]
        if {
            "gt": i["created"] > moment,
            "gte": i["created"] >= moment,
            "lt": i["created"] < moment,
            "lte": i["created"] <= moment,
        }[op]
    ]
    listed = client.v1.invoices.list(params={"limit": 50, "created": {op: moment}})
    assert [i.id for i in listed.auto_paging_iter()] == newest_first(chosen)


def test_a_cut_short_line_list_auto_pages_to_every_line(client, files):
    rest: dict[str, list[str]] = {}
    for line in files["invoice_lines"]:
        rest.setdefault(line["invoice"], []).append(line["id"])
    cut = [i for i in files["invoices"] if i["lines"]["has_more"]]
    assert cut
    for exported in cut:
        invoice = client.v1.invoices.retrieve(exported["id"])
        assert invoice.lines.has_more is True
        assert invoice.lines.url == f"/v1/invoices/{exported['id']}/lines"
        expected = [line["id"] for line in exported["lines"]["data"]] + rest[exported["id"]]
        assert [line.id for line in invoice.lines.auto_paging_iter()] == expected
        paged = client.v1.invoices.line_items.list(exported["id"], params={"limit": 1})
        assert [line.id for line in paged.auto_paging_iter()] == expected
    whole = next(i for i in files["invoices"] if not i["lines"]["has_more"])
    invoice = client.v1.invoices.retrieve(whole["id"])
    assert invoice.lines.has_more is False
    assert [line.id for line in invoice.lines.auto_paging_iter()] == [
        line["id"] for line in whole["lines"]["data"]
    ]


def test_stripe_version_chooses_the_shape_of_every_object(client, old_client, files):
    old = [
        i.to_dict() for i in old_client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()
    ]
    new = [i.to_dict() for i in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()]
    assert len(old) == len(new) == len(files["invoices"])
    for before, after in zip(old, new, strict=True):
        assert "parent" not in before and before["subscription"].startswith("sub_")
        assert after["parent"]["subscription_details"]["subscription"] == before["subscription"]
        assert "subscription" not in after
        for line_old, line_new in zip(before["lines"]["data"], after["lines"]["data"], strict=True):
            assert line_old["price"]["id"] == line_new["pricing"]["price_details"]["price"]
            assert line_old["price"]["recurring"]["interval"]
            details = line_new["parent"]["subscription_item_details"]
            assert (details["proration"], details["subscription"]) == (
                line_old["proration"],
                line_old["subscription"],
            )
    sub_old = old_client.v1.subscriptions.list(params={"limit": 1, "status": "all"}).data[0]
    sub_new = client.v1.subscriptions.retrieve(sub_old.id)
    assert sub_old.current_period_end == sub_new["items"].data[0].current_period_end
    assert "current_period_end" not in sub_new.to_dict()


def test_without_a_header_the_account_default_answers(bundle, files):
    import requests

    invoice_id = files["invoices"][-1]["id"]
    for default, new in ((None, True), (OLD_API_VERSION, False), (CURRENT_API_VERSION, True)):
        options = {"default_api_version": default} if default else {}
        with start_in_background(bundle / "billing", KEY, **options) as running:
            answer = requests.get(
                f"{running.url}/v1/invoices/{invoice_id}",
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=10,
            )
        assert ("parent" in answer.json()) is new
        assert answer.headers["Stripe-Version"] == (default or CURRENT_API_VERSION)


@pytest.mark.parametrize("shape", ["before-2025-03-31", "from-2025-03-31"])
def test_stripes_published_fixtures_are_served_in_either_shape(tmp_path, shape):
    from stripe_fixtures import write_fixture_export

    objects = write_fixture_export(tmp_path / "billing", shape)
    invoice_id, price = objects["invoices"][0]["id"], objects["prices"][0]
    with start_in_background(tmp_path / "billing", KEY) as running:
        for version, new in ((CURRENT_API_VERSION, True), (OLD_API_VERSION, False)):
            client = client_for(running, version)
            customers = [c.id for c in client.v1.customers.list().auto_paging_iter()]
            assert customers == [objects["customers"][0]["id"]], "the deleted one is left out"
            invoice = client.v1.invoices.retrieve(invoice_id, params={"expand": ["customer"]})
            assert invoice.customer.id == customers[0]
            lines = [line.to_dict() for line in invoice.lines.auto_paging_iter()]
            assert len(lines) == 2
            if new:
                ids = {line["pricing"]["price_details"]["price"] for line in lines}
                subscription = invoice.parent.subscription_details.subscription
            else:
                ids = {line["price"]["id"] for line in lines}
                subscription = invoice.subscription
            assert ids == {price["id"]}
            assert subscription == objects["subscriptions"][0]["id"]
