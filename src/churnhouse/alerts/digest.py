"""One digest per team per channel per night, and how each channel type shows it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from churnhouse.alerts.items import EVENT_TABLES, EVENT_TITLE, EVENT_TITLES, Item

SLACK_ITEM_BLOCKS = 45  # Slack takes at most 50 blocks per message


@dataclass(frozen=True)
class Digest:
    team: str
    as_of: datetime
    run_id: str
    items: tuple[Item, ...]
    location: str  # where the published rows are: a link, or the file / schema

    def counts(self) -> str:
        counts = Counter(item.event for item in self.items)
        shown = [event for event in EVENT_TITLES if counts[event]]
        return ", ".join(
            f"{counts[event]} {(EVENT_TITLE if counts[event] == 1 else EVENT_TITLES)[event]}"
            for event in shown
        )

    @property
    def subject(self) -> str:
        return f"[churnhouse] {self.team}: {self.counts()} (as of {self.as_of:%Y-%m-%d %H:%M} UTC)"

    def rows_hint(self) -> str:
        """Where to read the rows behind this digest."""
        tables = sorted({EVENT_TABLES[item.event] for item in self.items})
        keys = ", ".join(f"'{key}'" for key in sorted({item.customer_key for item in self.items}))
        return (
            f"published rows: {self.location} (tables {', '.join(tables)}); e.g. "
            f'churnhouse query "SELECT * FROM {tables[0]} WHERE customer_key IN ({keys})"'
        )

    def text(self) -> str:
        lines = [self.subject, ""]
        for event, title in EVENT_TITLES.items():
            items = [item for item in self.items if item.event == event]
            if not items:
                continue
            lines.append(f"{title.capitalize()} ({len(items)}):")
            lines.extend(f"- {describe(item)}" for item in items)
            lines.append("")
        lines.append(self.rows_hint())
        return "\n".join(lines)

    def webhook_payload(self) -> dict:
        return {
            "source": "churnhouse",
            "team": self.team,
            "as_of": self.as_of.isoformat(),
            "run_id": self.run_id,
            "summary": self.counts(),
            "published_rows": self.location,
            "items": [item.as_dict() for item in self.items],
        }

    def slack_payload(self) -> dict:
        blocks = [{"type": "header", "text": {"type": "plain_text", "text": self.subject[:150]}}]
        for item in self.items[:SLACK_ITEM_BLOCKS]:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": describe(item)}})
        if len(self.items) > SLACK_ITEM_BLOCKS:
            more = len(self.items) - SLACK_ITEM_BLOCKS
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"... and {more} more"}}
            )
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": self.rows_hint()}]}
        )
        return {"text": self.text(), "blocks": blocks}


def describe(item: Item) -> str:
    """One line per item: who, how much, why (in their words), and what kind of leaver."""
    who = f"{item.account_name or '(no CRM account)'} [{item.customer_key}], {item.segment}"
    money = f"{item.mrr:,.2f} USD MRR" if item.mrr is not None else "MRR unknown"
    parts = [f"{item.at:%Y-%m-%d %H:%M}", who]
    if item.event == "churn":
        parts.append(f"{money} lost, {item.churn_type}")
    elif item.event == "save":
        parts.append(f"{money} saved (offer: {item.offer or 'none'})")
    elif item.event == "cancel_request":
        parts.append(f"{money} at stake (offer: {item.offer or 'none'})")
    else:
        parts.append(f"{money}; signals: {item.risk_reasons or 'n/a'}")
    if item.event != "at_risk":
        parts.append(f"reason: {item.reason_category or 'none stated'}")
        if item.reason_text:
            words = " ".join(item.reason_text.split())
            parts.append(f'in their words: "{words}"')
    if item.archetype:
        influence = "influenceable" if item.is_influenceable else "not influenceable"
        parts.append(f"archetype: {item.archetype} ({influence})")
    if item.csm_id:
        parts.append(f"CSM: {item.csm_id}")
    for contact in item.contacts:
        parts.append(f"contact: {contact.get('name')} <{contact.get('email')}>")
    return "; ".join(parts)
