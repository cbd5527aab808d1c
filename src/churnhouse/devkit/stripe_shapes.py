"""Stripe objects in the two shapes of docs/sources.md section 2: before and from 2025-03-31.

API version `2025-03-31.basil` moved the invoice's and the line's subscription,
the line's proration flag and subscription item under `parent`, replaced the
line's whole `price` by `pricing.price_details.price` (an id) and moved a
subscription's billing period onto its items. These pure functions convert one
object (customer, subscription, invoice, line, charge, price) from one shape to
the other; customers, charges and prices look the same in both. New → old
needs the price objects (id → price), since a new-shape line names its price
by id only. Converting an object already in the target shape returns it as is.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

NEW_SHAPE_FROM = "2025-03-31"
CURRENT_API_VERSION = "2025-03-31.basil"  # the shape the simulator writes by default
OLD_API_VERSION = "2025-02-24.acacia"  # the last version with the old shape

_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[a-z]+)?$")


def api_version_date(api_version: str) -> str:
    """The date prefix of a Stripe API version (`2025-03-31.basil` → `2025-03-31`)."""
    match = _VERSION.match(api_version or "")
    if match is None:
        raise ValueError(
            f"not a Stripe API version: {api_version!r} (expected YYYY-MM-DD or YYYY-MM-DD.name)"
        )
    return match.group(1)


def is_new_shape(api_version: str) -> bool:
    """Whether objects of `api_version` have the 2025-03-31 shape (versions compare by date)."""
    return api_version_date(api_version) >= NEW_SHAPE_FROM


def has_new_shape(obj: Mapping) -> bool | None:
    """The shape an object is in: True new, False old, None when both look the same."""
    kind = obj.get("object")
    if kind == "invoice":
        if "parent" in obj:
            return True
        if "subscription" in obj:
            return False
        lines = [line for line in _lines(obj) if isinstance(line, Mapping)]
        return has_new_shape(lines[0]) if lines else None
    if kind == "line_item":
        if "pricing" in obj or "parent" in obj:
            return True
        return False if "price" in obj or "proration" in obj else None
    if kind == "subscription":
        if "current_period_start" in obj:
            return False
        items = _items(obj)
        return True if any("current_period_start" in item for item in items) else None
    return None


def to_new_shape(obj: Mapping) -> dict:
    """`obj` (any shape) in the shape of 2025-03-31 and later."""
    if has_new_shape(obj) is not False:
        return dict(obj)
    obj = copy.deepcopy(dict(obj))
    kind = obj["object"]
    if kind == "invoice":
        return _invoice_to_new(obj)
    if kind == "line_item":
        return _line_to_new(obj)
    return _subscription_to_new(obj)


def to_old_shape(obj: Mapping, prices: Mapping[str, Mapping]) -> dict:
    """`obj` (any shape) in the shape before 2025-03-31; `prices` maps price id → price object.

    A new-shape line whose price is not in `prices` raises KeyError naming the line and price.
    """
    if has_new_shape(obj) is not True:
        return dict(obj)
    obj = copy.deepcopy(dict(obj))
    kind = obj["object"]
    if kind == "invoice":
        return _invoice_to_old(obj, prices)
    if kind == "line_item":
        return _line_to_old(obj, prices)
    return _subscription_to_old(obj)


def in_shape(obj: Mapping, new: bool, prices: Mapping[str, Mapping]) -> dict:
    """`obj` in the new shape when `new`, else in the old one."""
    return to_new_shape(obj) if new else to_old_shape(obj, prices)


# --- invoices ------------------------------------------------------------------------------------


def _invoice_to_new(invoice: dict) -> dict:
    subscription = invoice.pop("subscription", None)
    parent = None
    if subscription is not None:
        parent = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription},
        }
    out = _insert_after(invoice, "customer", "parent", parent)
    _map_lines(out, _line_to_new)
    return out


def _invoice_to_old(invoice: dict, prices: Mapping[str, Mapping]) -> dict:
    parent = invoice.pop("parent", None) or {}
    subscription = _details(parent, "subscription_details").get("subscription")
    out = _insert_after(invoice, "customer", "subscription", subscription)
    _map_lines(out, lambda line: _line_to_old(line, prices))
    return out


# --- invoice lines -------------------------------------------------------------------------------


def _line_to_new(line: dict) -> dict:
    subscription = line.pop("subscription", None)
    item = line.pop("subscription_item", None)
    proration = bool(line.pop("proration", False))
    proration_details = line.pop("proration_details", None) or {"credited_items": None}
    invoice_item = line.pop("invoice_item", None)
    line.pop("type", None)  # "subscription" | "invoiceitem": parent.type says it now
    price = line.pop("price", None)
    if subscription is not None or item is not None:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "subscription": subscription,
                "subscription_item": item,
                "proration": proration,
                "proration_details": proration_details,
                "invoice_item": invoice_item,
            },
        }
    else:
        parent = {
            "type": "invoice_item_details",
            "subscription_item_details": None,
            "invoice_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": proration_details,
                "subscription": None,
            },
        }
    pricing = None
    if price is not None:
        price_id = price.get("id") if isinstance(price, Mapping) else price
        product = price.get("product") if isinstance(price, Mapping) else None
        pricing = {
            "type": "price_details",
            "unit_amount_decimal": _unit_amount_decimal(price),
            "price_details": {"price": price_id, "product": product},
        }
    line["parent"] = parent
    line["pricing"] = pricing
    return line


def _line_to_old(line: dict, prices: Mapping[str, Mapping]) -> dict:
    parent = line.pop("parent", None) or {}
    details = _details(parent, "subscription_item_details", "invoice_item_details")
    pricing = line.pop("pricing", None) or {}
    price_ref = (pricing.get("price_details") or {}).get("price")
    price = None
    if isinstance(price_ref, Mapping):  # expanded
        price = copy.deepcopy(dict(price_ref))
    elif price_ref is not None:
        if price_ref not in prices:
            raise KeyError(f"line {line.get('id')!r} names price {price_ref!r}, unknown here")
        price = copy.deepcopy(dict(prices[price_ref]))
    line["subscription"] = details.get("subscription")
    line["subscription_item"] = details.get("subscription_item")
    line["proration"] = bool(details.get("proration", False))
    line["price"] = price
    return line


def _details(parent: Mapping, *kinds: str) -> Mapping:
    """The details `parent.type` names (Stripe fills only that one), else the first given."""
    kind = parent.get("type")
    if kind is not None:
        return (parent.get(kind) or {}) if kind in kinds else {}
    return next((parent[k] for k in kinds if parent.get(k)), {})


def _unit_amount_decimal(price) -> str | None:
    if not isinstance(price, Mapping):
        return None
    if price.get("unit_amount_decimal") is not None:
        return str(price["unit_amount_decimal"])
    return None if price.get("unit_amount") is None else str(price["unit_amount"])


# --- subscriptions ------------------------------------------------------------------------------


def _subscription_to_new(subscription: dict) -> dict:
    start = subscription.pop("current_period_start", None)
    end = subscription.pop("current_period_end", None)
    for item in _items(subscription):
        item["current_period_start"], item["current_period_end"] = start, end
    return subscription


def _subscription_to_old(subscription: dict) -> dict:
    items = _items(subscription)
    starts = [i["current_period_start"] for i in items if i.get("current_period_start") is not None]
    ends = [i["current_period_end"] for i in items if i.get("current_period_end") is not None]
    for item in items:
        item.pop("current_period_start", None)
        item.pop("current_period_end", None)
    period = {
        "current_period_start": min(starts) if starts else None,
        "current_period_end": max(ends) if ends else None,
    }
    out = {}
    for key, value in subscription.items():
        out[key] = value
        if key == "ended_at":
            out.update(period)
    if "current_period_start" not in out:
        out.update(period)
    return out


# --- helpers -------------------------------------------------------------------------------------


def _lines(invoice: Mapping) -> list:
    lines = invoice.get("lines")
    return list(lines.get("data") or []) if isinstance(lines, Mapping) else []


def _items(subscription: Mapping) -> list:
    items = subscription.get("items")
    return list(items.get("data") or []) if isinstance(items, Mapping) else []


def _map_lines(invoice: dict, convert) -> None:
    lines = invoice.get("lines")
    if isinstance(lines, dict) and isinstance(lines.get("data"), list):
        lines["data"] = [
            convert(line) if isinstance(line, dict) else line for line in lines["data"]
        ]


def _insert_after(obj: dict, anchor: str, key: str, value) -> dict:
    """`obj` with `key` set to `value` right after `anchor` (Stripe's field order, for reading)."""
    out = {}
    for name, existing in obj.items():
        if name != key:
            out[name] = existing
        if name == anchor:
            out[key] = value
    if key not in out:
        out[key] = value
    return out
