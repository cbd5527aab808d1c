"""Billing records as Stripe objects (the shapes of docs/sources.md), one JSON per line.

Objects are built in the shape before 2025-03-31 and converted by
`stripe_shapes` when the account's API version (or, after a mid-history
upgrade, the object's creation) calls for the new one. Subscriptions are
re-read in full, so they are always in the account's current shape.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from churnhouse.devkit.simulator.catalog import PLANS, SEAT_PRICE, TIERS
from churnhouse.devkit.simulator.lifecycle import addon_price, plan_price
from churnhouse.devkit.simulator.model import (
    BillingCustomer,
    Charge,
    Invoice,
    Line,
    Price,
    Subscription,
)
from churnhouse.devkit.stripe_shapes import CURRENT_API_VERSION, is_new_shape, to_new_shape

BILLING_FILES = ("customers", "subscriptions", "invoices", "charges", "invoice_lines")
CUT_SHORT_SHARE = 0.5  # of invoices with more than one line: the embedded list is cut short
EMBEDDED_LINES = 1  # lines an invoice cut short still embeds; the rest are in invoice_lines
PRICES_CREATED = 1_577_836_800  # 2020-01-01: the catalog predates any simulated span


@dataclass(frozen=True)
class StripeShape:
    """Which shape each object is written in: the account's API version and its upgrade day."""

    api_version: str = CURRENT_API_VERSION
    upgrade_at: int | None = None  # Unix seconds: objects created before it are in the old shape
    seed: int = 0

    def __post_init__(self) -> None:
        if self.upgrade_at is not None and not is_new_shape(self.api_version):
            raise ValueError(
                f"an upgrade day needs a new-shape API version (2025-03-31 or later), "
                f"not {self.api_version!r}"
            )

    @property
    def current_is_new(self) -> bool:
        return is_new_shape(self.api_version)

    def new_at(self, created: int) -> bool:
        """Whether an object created at `created` is in the new shape."""
        return self.current_is_new and (self.upgrade_at is None or created >= self.upgrade_at)

    def cut_short(self, invoice: Invoice) -> bool:
        """A seeded share of invoices with several lines embed only the first ones."""
        if len(invoice.lines) <= EMBEDDED_LINES:
            return False
        draw = zlib.crc32(f"{self.seed}:{invoice.id}".encode()) / 2**32
        return draw < CUT_SHORT_SHARE


def price_object(price: Price, active: bool = True) -> dict:
    """A price, the same whole object in prices.jsonl, on items and on old-shape lines."""
    return {
        "id": price.id,
        "object": "price",
        "active": active,
        "created": PRICES_CREATED,
        "currency": price.currency,
        "product": price.product,
        "type": "recurring" if price.interval else "one_time",
        "unit_amount": price.unit_amount,
        "unit_amount_decimal": str(price.unit_amount),
        "recurring": (
            {
                "interval": price.interval,
                "interval_count": price.interval_count,
                "usage_type": "licensed",
            }
            if price.interval
            else None
        ),
    }


def price_catalog_lines() -> list[str]:
    """prices.jsonl: every price of the catalog (used or not), plus retired and one-time ones.

    Active: each tier on each plan and the add-on, in every currency. Inactive: the
    add-on's launch price, retired before the simulated span. One-time: onboarding.
    """
    prices: list[dict] = []
    for currency in SEAT_PRICE:
        for tier in range(len(TIERS)):
            for plan in PLANS:
                prices.append(price_object(plan_price(tier, plan, currency)))
        addon = addon_price(currency)
        prices.append(price_object(addon))
        launch_amount = addon.unit_amount * 2 // 3
        launch = Price(f"{addon.id}_launch", addon.product, launch_amount, currency, "month", 1)
        prices.append(price_object(launch, active=False))
        onboarding = Price(
            f"price_onboarding_{currency}", "prod_onboarding", SEAT_PRICE[currency][2] * 10,
            currency, None, None,
        )  # fmt: skip
        prices.append(price_object(onboarding))
    prices.sort(key=lambda p: p["id"])
    return [_json(p) for p in prices]


def customer_object(customer: BillingCustomer) -> dict:
    metadata = {"crm_account_id": customer.crm_account_id} if customer.crm_account_id else {}
    obj = {
        "id": customer.id,
        "object": "customer",
        "email": customer.email,
        "name": customer.name,
        "created": customer.created,
        "currency": customer.currency,
        "metadata": metadata,
    }
    if customer.deleted:
        obj["deleted"] = True
    return obj


def subscription_object(sub: Subscription, shape: StripeShape | None = None) -> dict:
    obj = {
        "id": sub.id,
        "object": "subscription",
        "customer": sub.customer,
        "status": sub.status,
        "created": sub.created,
        "start_date": sub.created,
        "trial_start": sub.trial_start,
        "trial_end": sub.trial_end,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "canceled_at": sub.canceled_at,
        "ended_at": sub.ended_at,
        "current_period_start": sub.current_period_start,
        "current_period_end": sub.current_period_end,
        "cancellation_details": {
            "reason": sub.cancel_reason,
            "feedback": sub.feedback,
            "comment": sub.comment,
        },
        "items": {
            "object": "list",
            "data": [
                {
                    "id": item.id,
                    "object": "subscription_item",
                    "subscription": sub.id,
                    "quantity": item.quantity,
                    "price": price_object(item.price),
                }
                for item in sub.items
            ],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub.id}",
        },
        "metadata": {},
    }
    return to_new_shape(obj) if (shape or StripeShape()).current_is_new else obj


def line_object(line: Line, invoice: Invoice) -> dict:
    """An invoice line in the old shape."""
    return {
        "id": line.id,
        "object": "line_item",
        "invoice": invoice.id,
        "subscription": line.subscription,
        "subscription_item": line.item,
        "quantity": line.quantity,
        "amount": line.amount,
        "currency": invoice.currency,
        "discount_amounts": [{"amount": a, "discount": d} for a, d in line.discounts],
        "proration": line.proration,
        "period": {"start": line.start, "end": line.end},
        "price": price_object(line.price),
    }


def invoice_objects(invoice: Invoice, shape: StripeShape | None = None) -> tuple[dict, list[dict]]:
    """The invoice and, when its embedded line list is cut short, its remaining lines."""
    shape = shape or StripeShape()
    lines = [line_object(line, invoice) for line in invoice.lines]
    rest: list[dict] = []
    if shape.cut_short(invoice):
        lines, rest = lines[:EMBEDDED_LINES], lines[EMBEDDED_LINES:]
    obj = {
        "id": invoice.id,
        "object": "invoice",
        "customer": invoice.customer,
        "subscription": invoice.subscription,
        "status": invoice.status,
        "currency": invoice.currency,
        "created": invoice.created,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "attempt_count": invoice.attempt_count,
        "billing_reason": invoice.billing_reason,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": bool(rest),
            "url": f"/v1/invoices/{invoice.id}/lines",
        },
    }
    if shape.new_at(invoice.created):
        return to_new_shape(obj), [to_new_shape(line) for line in rest]
    return obj, rest


def charge_object(charge: Charge) -> dict:
    return {
        "id": charge.id,
        "object": "charge",
        "customer": charge.customer,
        "invoice": charge.invoice,
        "amount": charge.amount,
        "currency": charge.currency,
        "created": charge.created,
        "status": charge.status,
        "failure_code": charge.failure_code,
    }


def billing_lines(companies, shape: StripeShape | None = None) -> dict[str, list[str]]:
    """The export files' lines for `companies` (prices aside), in company then creation order.

    Deleted customers left out of the list (`listed` false) are not in customers.jsonl;
    their subscriptions, invoices and charges still name them.
    """
    shape = shape or StripeShape()
    out: dict[str, list[str]] = {name: [] for name in BILLING_FILES}
    for company in companies:
        out["customers"] += [
            _json(customer_object(c)) for c in company.billing_customers if c.listed
        ]
        out["subscriptions"] += [
            _json(subscription_object(sub, shape)) for sub in company.subscriptions
        ]
        for invoice in company.invoices:
            obj, rest = invoice_objects(invoice, shape)
            out["invoices"].append(_json(obj))
            out["invoice_lines"] += [_json(line) for line in rest]
        out["charges"] += [_json(charge_object(c)) for c in company.charges]
    return out


def _json(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)
