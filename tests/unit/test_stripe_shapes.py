"""stripe_shapes: Stripe objects between the shapes before and from API version 2025-03-31.

Checked on Stripe's own published object fixtures (tests/fixtures/stripe, see its
README) and on objects the simulator writes: every field of the table in
docs/sources.md section 2 lands where the other shape keeps it.
"""

from __future__ import annotations

import copy

import pytest
from stripe_fixtures import fixture

from churnhouse.devkit.simulator.billing import StripeShape, invoice_objects, subscription_object
from churnhouse.devkit.simulator.model import Invoice, Item, Line, Price, Subscription
from churnhouse.devkit.stripe_shapes import (
    has_new_shape,
    is_new_shape,
    to_new_shape,
    to_old_shape,
)

OLD, NEW = "before-2025-03-31", "from-2025-03-31"


@pytest.mark.parametrize(
    ("version", "new"),
    [
        ("2024-06-20", False),
        ("2025-02-24.acacia", False),
        ("2025-03-30", False),
        ("2025-03-31.basil", True),
        ("2025-03-31", True),
        ("2025-09-30.clover", True),
        ("2026-10-28.endive", True),
    ],
)
def test_versions_compare_by_their_date(version, new):
    assert is_new_shape(version) is new


@pytest.mark.parametrize("version", ["", "basil", "2025-3-31", "2025-03-31.Basil", "latest"])
def test_a_version_that_is_no_date_is_refused(version):
    with pytest.raises(ValueError, match="not a Stripe API version"):
        is_new_shape(version)


# --- positions: the old fixture converted lands where the new fixture has the fields ------------

# (path, present in the new shape): the table of docs/sources.md section 2, per object.
INVOICE_POSITIONS = [("parent", True)]
LINE_POSITIONS = [
    ("parent", True),
    ("pricing", True),
    ("price", False),
    ("proration", False),
    ("subscription_item", False),
]


def has_path(obj: dict, path: str) -> bool:
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return False
        obj = obj[key]
    return True


def test_the_fixtures_are_the_two_shapes():
    assert has_new_shape(fixture(OLD, "invoice")) is False
    assert has_new_shape(fixture(NEW, "invoice")) is True
    assert has_new_shape(fixture(OLD, "line_item")) is False
    assert has_new_shape(fixture(NEW, "line_item")) is True
    assert has_new_shape(fixture(OLD, "subscription")) is False
    assert has_new_shape(fixture(NEW, "subscription")) is True
    for kind in ("customer", "price", "charge"):  # the same in both shapes
        assert has_new_shape(fixture(OLD, kind)) is has_new_shape(fixture(NEW, kind)) is None


@pytest.mark.parametrize("kind", ["invoice", "line_item"])
def test_old_fixture_to_new_has_the_new_fixtures_positions(kind):
    converted, published = to_new_shape(fixture(OLD, kind)), fixture(NEW, kind)
    positions = INVOICE_POSITIONS if kind == "invoice" else LINE_POSITIONS
    for path, present in positions:
        assert has_path(converted, path) == has_path(published, path) == present, path
    old_line = fixture(OLD, kind) if kind == "line_item" else fixture(OLD, kind)["lines"]["data"][0]
    new_line = converted if kind == "line_item" else converted["lines"]["data"][0]
    published_line = published if kind == "line_item" else published["lines"]["data"][0]
    # The old line is an invoice item (no subscription): so is the new one, in both copies.
    assert old_line["type"] == "invoiceitem" and old_line["subscription"] is None
    assert new_line["parent"]["type"] == published_line["parent"]["type"] == "invoice_item_details"
    details = new_line["parent"]["invoice_item_details"]
    assert (details["proration"], details["invoice_item"]) == (
        old_line["proration"],
        old_line["invoice_item"],
    )
    assert new_line["pricing"]["price_details"] == {
        "price": old_line["price"]["id"],
        "product": old_line["price"]["product"],
    }
    assert new_line["pricing"]["unit_amount_decimal"] == old_line["price"]["unit_amount_decimal"]
    assert new_line["discount_amounts"] == old_line["discount_amounts"]


def test_old_fixture_subscription_to_new_moves_the_period_onto_items():
    old = fixture(OLD, "subscription")
    converted, published = to_new_shape(old), fixture(NEW, "subscription")
    for sub in (converted, published):
        assert "current_period_start" not in sub and "current_period_end" not in sub
        for item in sub["items"]["data"]:
            assert {"current_period_start", "current_period_end"} <= set(item)
    item = converted["items"]["data"][0]
    assert (item["current_period_start"], item["current_period_end"]) == (
        old["current_period_start"],
        old["current_period_end"],
    )


def test_new_fixture_to_old_has_the_old_fixtures_positions():
    prices = {fixture(NEW, "price")["id"]: fixture(NEW, "price")}
    invoice = to_old_shape(fixture(NEW, "invoice"), prices)
    published = fixture(OLD, "invoice")
    assert "parent" not in invoice and "subscription" in invoice and "subscription" in published
    # Its parent is a quote's: Stripe fills only the details parent.type names.
    assert fixture(NEW, "invoice")["parent"]["type"] == "quote_details"
    assert invoice["subscription"] is None
    line, published_line = invoice["lines"]["data"][0], published["lines"]["data"][0]
    for key in ("subscription", "proration", "price"):
        assert key in line and key in published_line, key
    assert line["subscription_item"] is None, "an invoice item bills no subscription item"
    assert "pricing" not in line and "parent" not in line
    assert line["proration"] is True  # parent.invoice_item_details.proration of the new fixture
    subscription = to_old_shape(fixture(NEW, "subscription"), prices)
    item = fixture(NEW, "subscription")["items"]["data"][0]
    assert subscription["current_period_start"] == item["current_period_start"]
    assert all("current_period_start" not in i for i in subscription["items"]["data"])


# --- the simulator's objects: both ways, nothing lost ---------------------------------------------

PRICE = Price("price_team_monthly_eur", "prod_team", 1900, "eur", "month", 1)


def simulated_invoice(lines: int = 2) -> Invoice:
    return Invoice(
        id="in_1",
        customer="cus_1",
        subscription="sub_1",
        currency="eur",
        created=1_725_148_800,
        billing_reason="subscription_update",
        lines=[
            Line(
                f"il_{n}",
                "sub_1",
                PRICE,
                12,
                22800,
                1_725_148_800,
                1_727_740_800,
                proration=n > 0,
                item="si_1",
                discounts=((2280, "di_1"),) if n == 0 else (),
            )
            for n in range(lines)
        ],  # fmt: skip
        period_start=1_722_470_400,
        period_end=1_725_148_800,
        status="paid",
    )


def whole(version: str) -> StripeShape:
    """A shape whose seed leaves the two-line test invoice's list whole."""
    return next(
        shape
        for shape in (StripeShape(version, seed=seed) for seed in range(20))
        if not shape.cut_short(simulated_invoice())
    )


def test_a_simulated_invoice_goes_to_the_new_shape_and_back_unchanged():
    old, rest = invoice_objects(simulated_invoice(), whole("2025-02-24.acacia"))
    assert rest == [] and old["lines"]["has_more"] is False
    new = to_new_shape(old)
    assert new["parent"]["subscription_details"]["subscription"] == "sub_1"
    first, second = new["lines"]["data"]
    assert first["pricing"] == {
        "type": "price_details",
        "unit_amount_decimal": "1900",
        "price_details": {"price": "price_team_monthly_eur", "product": "prod_team"},
    }
    assert first["parent"]["subscription_item_details"]["subscription_item"] == "si_1"
    assert first["discount_amounts"] == [{"amount": 2280, "discount": "di_1"}]
    assert second["parent"]["subscription_item_details"]["proration"] is True
    prices = {PRICE.id: old["lines"]["data"][0]["price"]}
    assert to_old_shape(new, prices) == old
    assert to_new_shape(new) == new and to_old_shape(old, {}) == old, "already in that shape"


def test_a_new_shape_line_whose_price_is_unknown_names_both():
    new = to_new_shape(invoice_objects(simulated_invoice(1), StripeShape("2024-06-20"))[0])
    with pytest.raises(KeyError, match="il_0.*price_team_monthly_eur"):
        to_old_shape(new, {})


def test_an_expanded_price_stays_an_object_going_back():
    old, _ = invoice_objects(simulated_invoice(1), StripeShape("2024-06-20"))
    new = to_new_shape(old)
    expanded = copy.deepcopy(new)
    price = old["lines"]["data"][0]["price"]
    expanded["lines"]["data"][0]["pricing"]["price_details"]["price"] = price
    assert to_old_shape(expanded, {}) == old


def test_a_simulated_subscription_in_both_shapes():
    sub = Subscription("sub_1", "cus_1", 1_700_000_000, [Item("si_1", PRICE, 3)])
    sub.current_period_start, sub.current_period_end = 1_725_148_800, 1_727_740_800
    old = subscription_object(sub, StripeShape("2025-02-24.acacia"))
    new = subscription_object(sub)
    assert old["current_period_end"] == new["items"]["data"][0]["current_period_end"]
    assert to_new_shape(old) == new and to_old_shape(new, {}) == old
