"""The reason rules of docs/metrics.md: statements, categories, archetypes, influenceable.

Pure functions on plain values, so the truth and the tests share one reading
of the text.
"""

from __future__ import annotations

from typing import NamedTuple

CATEGORY_OF_RAW = {
    "too_expensive": "price",
    "budget_cut": "price",
    "missing_features": "product_fit",
    "too_complex": "product_fit",
    "low_quality": "product_quality",
    "customer_service": "service",
    "switched_service": "competitor",
    "no_longer_needed": "no_longer_needed",
    "unused": "unused",
    "business_closed": "external",
    "other": "other",
}
# Tried in this order; the first category with a matching keyword wins.
KEYWORDS = (
    ("product_quality", ("bug", "crash", "outage", "故障", "缺陷", "崩溃")),
    ("service", ("support", "customer service", "客服", "服务")),
    ("competitor", ("competitor", "switched to", "竞争对手", "换成")),
    ("price", ("expensive", "price", "pricing", "太贵", "价格")),
    ("product_fit", ("missing feature", "too complex", "complicated", "功能不够", "太复杂")),
    ("no_longer_needed", ("no longer need", "不再需要")),
    ("unused", ("not using", "no time", "forgot", "没时间", "没有用")),
    ("external", ("closed down", "shutting down", "acquired", "倒闭", "关闭")),
)
INFLUENCEABLE_CATEGORIES = {"price", "product_fit", "competitor"}
INFLUENCEABLE_ARCHETYPES = {"habit_change", "we_messed_up"}


class Statement(NamedTuple):
    category: str
    raw_value: str | None


def keyword_category(text: str | None) -> str | None:
    """The first category (in spec order) with a keyword in `text`, case-insensitive."""
    if not text:
        return None
    lowered = text.lower()
    for category, words in KEYWORDS:
        if any(word in lowered for word in words):
            return category
    return None


def survey_statement(primary_reason: str, reason_text: str) -> Statement | None:
    """What a cancellation-survey answer states, if anything."""
    raw = primary_reason.strip()
    if raw and raw != "other":
        return Statement(CATEGORY_OF_RAW.get(raw, "other"), raw)
    found = keyword_category(reason_text)
    if found:
        return Statement(found, raw or None)
    if raw == "other" or reason_text:
        return Statement("other", raw or None)
    return None


def billing_statement(feedback: str) -> Statement:
    return Statement(CATEGORY_OF_RAW.get(feedback, "other"), feedback)


def complaint_statement(subject: str, body: str | None) -> Statement:
    text = f"{subject} {body or ''}"
    return Statement(keyword_category(text) or "service", "complaint")


def archetype(
    statement: Statement, complaint_before: bool, has_workspace: bool, quiet_month: bool
) -> str:
    """The four kinds of churn (plus `other`), first rule that holds."""
    category, raw = statement
    if category == "no_longer_needed":
        return "graduated"
    if category in ("external", "payment_failed") or raw in ("budget_cut", "business_closed"):
        return "external"
    if category in ("product_quality", "service") or complaint_before:
        return "we_messed_up"
    if category == "unused" or (has_workspace and quiet_month):
        return "habit_change"
    return "other"


def is_influenceable(kind: str, category: str) -> bool:
    return kind in INFLUENCEABLE_ARCHETYPES or category in INFLUENCEABLE_CATEGORIES
