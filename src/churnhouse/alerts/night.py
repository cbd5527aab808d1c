"""Tonight's alerts: the published items each team's routes select, minus what each
channel already received, as one digest per team per channel; then the ledger."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from churnhouse.alerts import items as published
from churnhouse.alerts import ledger
from churnhouse.alerts.channels import ChannelFailed, deliver
from churnhouse.alerts.config import AlertsConfig, Channel
from churnhouse.alerts.digest import Digest
from churnhouse.alerts.items import Item
from churnhouse.contracts import RAW_SCHEMA
from churnhouse.warehouse import Warehouse


@dataclass(frozen=True)
class Delivery:
    channel: Channel
    digest: Digest
    error: str | None = None

    def describe(self) -> str:
        state = "sent" if self.error is None else f"FAILED ({self.error}); retried next night"
        return f"{self.channel.key}: {len(self.digest.items)} item(s) {state}"


def published_location(warehouse: Warehouse, config: AlertsConfig) -> str:
    """A link (the file's `link:`) or where the published rows are; never a password."""
    return config.link or warehouse.published_location()


def _candidates(warehouse: Warehouse, since: datetime, as_of: datetime, dry: bool) -> list[Item]:
    found = published.churn_items(warehouse, since) + published.cancel_flow_items(warehouse, since)
    high = published.high_risk_now(warehouse)
    if high is not None:
        rows = {row["customer_key"]: row for row in high}
        if dry:
            episodes = ledger.open_risk_episodes(warehouse)
            entered = {key: episodes.get(key, as_of) for key in rows}
        else:
            entered = ledger.risk_episodes(warehouse, set(rows), as_of)
        found += [
            published.at_risk_item(rows[key], at)
            for key, at in sorted(entered.items())
            if key in rows and at >= since
        ]
    return found


def _contacts(warehouse: Warehouse, customer_keys: set[str]) -> dict[str, tuple[dict, ...]]:
    """The primary contacts (name, e-mail) of the customers' CRM accounts, latest version."""
    if not customer_keys:
        return {}
    with warehouse.transaction() as tx:
        rows = tx.fetchall(
            "SELECT d.account_id, d.full_name, d.email FROM ("
            " SELECT account_id, full_name, trim(email) AS email, is_primary, row_number() OVER"
            " (PARTITION BY contact_id ORDER BY updated_at DESC) AS version"
            f" FROM {RAW_SCHEMA}.crm_contacts) d WHERE d.version = 1 AND d.is_primary "
            "ORDER BY d.account_id, d.full_name"
        )
    found: dict[str, list[dict]] = {}
    for account, name, email in rows:
        if account in customer_keys:
            found.setdefault(account, []).append({"name": name, "email": email})
    return {key: tuple(value) for key, value in found.items()}


def _team_items(config: AlertsConfig, team: str, candidates: list[Item], contacts) -> list[Item]:
    selected = []
    for item in candidates:
        routes = [r for r in config.routes if r.team == team and r.matches(item)]
        if not routes:
            continue
        if any(route.include_contacts for route in routes):
            item = replace(item, contacts=contacts.get(item.customer_key, ()))
        selected.append(item)
    return selected


def plan(
    config: AlertsConfig, warehouse: Warehouse, dry: bool = False
) -> tuple[published.Published | None, list[tuple[Channel, Digest]]]:
    """What each channel gets tonight. `dry` writes nothing to the ledger."""
    publication = published.publication(warehouse)
    if publication is None:
        return None, []
    as_of, run_id = publication.as_of, publication.run_id
    if not dry:
        ledger.ensure_ledger(warehouse)
    starts, sent = {}, {}
    for channel in config.channels():
        if dry:
            starts[channel.key], sent[channel.key] = _dry_state(warehouse, channel, config, as_of)
        else:
            starts[channel.key] = ledger.channel_since(
                warehouse, channel.key, as_of, config.lookback_days, run_id
            )
            sent[channel.key] = ledger.sent_ids(warehouse, channel.key)
    if not starts:
        return publication, []
    candidates = _candidates(warehouse, min(starts.values()), as_of, dry)
    wants_contacts = any(route.include_contacts for route in config.routes)
    contacts = _contacts(warehouse, {i.customer_key for i in candidates}) if wants_contacts else {}
    location = published_location(warehouse, config)
    planned = []
    for team in config.teams.values():
        team_items = _team_items(config, team.name, candidates, contacts)
        for channel in team.channels:
            pending = tuple(
                item
                for item in team_items
                if item.at >= starts[channel.key] and item.item_id not in sent[channel.key]
            )
            if pending:
                planned.append((channel, Digest(team.name, as_of, run_id, pending, location)))
    return publication, planned


def _dry_state(warehouse: Warehouse, channel: Channel, config: AlertsConfig, as_of: datetime):
    """A channel's start and sent items as the ledger holds them, without creating anything."""
    since, sent = ledger.recorded_state(warehouse, channel.key)
    return since or as_of - timedelta(days=config.lookback_days), sent


def send_alerts(config: AlertsConfig, warehouse: Warehouse) -> list[Delivery]:
    """Send tonight's digests; a channel that fails keeps its items for the next night."""
    publication, planned = plan(config, warehouse)
    deliveries = []
    for channel, digest in planned:
        endpoint = config.connections[channel.connection]
        error = None
        try:
            deliver(
                channel,
                endpoint,
                digest.subject,
                digest.text(),
                digest.webhook_payload(),
                digest.slack_payload(),
            )
        except ChannelFailed as failure:
            error = str(failure)
        ledger.record_delivery(warehouse, channel.key, digest.run_id, digest.items, error)
        delivery = Delivery(channel, digest, error)
        print(f"alerts: {delivery.describe()}", flush=True)
        deliveries.append(delivery)
    if publication is not None and not planned:
        print(f"alerts: nothing new to send for as_of {publication.as_of}", flush=True)
    failed = [delivery for delivery in deliveries if delivery.error is not None]
    if failed:
        from churnhouse.alerts.pipeline import failed_channels_message, send_to_data_team

        send_to_data_team(config, *failed_channels_message(failed))
    return deliveries


def dry_run(config: AlertsConfig, warehouse: Warehouse, now: datetime | None = None) -> str:
    """What tonight's routing would send, channel by channel; sends and records nothing."""
    from churnhouse.alerts.pipeline import stale_publication

    publication, planned = plan(config, warehouse, dry=True)
    if publication is None:
        return "alerts dry run: nothing is published yet (run a night first)"
    lines = [
        f"alerts dry run of {config.path}: published as_of {publication.as_of:%Y-%m-%d %H:%M} "
        f"UTC (run {publication.run_id}); nothing is sent",
    ]
    waiting = {channel.key for channel, _ in planned}
    for channel, digest in planned:
        endpoint = config.connections.get(channel.connection)
        lines += ["", f"would send to {channel.key} via {endpoint or channel.connection}:"]
        lines += ["  " + line for line in digest.text().splitlines()]
    idle = [channel.key for channel in config.channels() if channel.key not in waiting]
    if idle:
        lines += ["", "nothing new for: " + ", ".join(idle)]
    if config.pipeline_team:
        stale = stale_publication(config, publication.as_of, now)
        state = f"would send {stale[0]!r}" if stale else "fresh, no alert"
        lines += ["", f"freshness (threshold {config.freshness_hours:g} h) -> {state}"]
    return "\n".join(lines)
