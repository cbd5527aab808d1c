"""Billing records as Stripe objects (the shapes of docs/sources.md), one JSON per line."""

from __future__ import annotations

import json

from churnhouse.devkit.simulator.model import BillingCustomer, Charge, Invoice, Price, Subscription


def _price(price: Price) -> dict:
    return {
        "id": price.id,
        "object": "price",
        "product": price.product,
        "unit_amount": price.unit_amount,
        "currency": price.currency,
        "recurring": {"interval": price.interval, "interval_count": price.interval_count},
    }


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


def subscription_object(sub: Subscription) -> dict:
    return {
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
                    "quantity": item.quantity,
                    "price": _price(item.price),
                }
                for item in sub.items
            ],
        },
        "metadata": {},
    }


def invoice_object(invoice: Invoice) -> dict:
    return {
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
            "data": [
                {
                    "id": line.id,
                    "object": "line_item",
                    "subscription": line.subscription,
                    "quantity": line.quantity,
                    "amount": line.amount,
                    "proration": line.proration,
                    "period": {"start": line.start, "end": line.end},
                    "price": _price(line.price),
                }
                for line in invoice.lines
            ],
        },
    }


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


def billing_lines(companies) -> dict[str, list[str]]:
    """The four export files' lines for `companies`, in company then creation order."""
    out: dict[str, list[str]] = {
        "customers": [],
        "subscriptions": [],
        "invoices": [],
        "charges": [],
    }
    for company in companies:
        out["customers"] += [_json(customer_object(c)) for c in company.billing_customers]
        out["subscriptions"] += [_json(subscription_object(s)) for s in company.subscriptions]
        out["invoices"] += [_json(invoice_object(i)) for i in company.invoices]
        out["charges"] += [_json(charge_object(c)) for c in company.charges]
    return out


def _json(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)
