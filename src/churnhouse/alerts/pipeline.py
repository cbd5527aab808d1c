"""Alerts about the pipeline itself, to the data team (`pipeline: team:` in the routing
file): a failed night, with the error (a gate lists its failing expectations), and
a published as_of older than `freshness_hours`. Not in the ledger: each is news."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from churnhouse.alerts.channels import ChannelFailed, deliver
from churnhouse.alerts.config import AlertsConfig


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def send_to_data_team(config: AlertsConfig, subject: str, text: str, fields: dict) -> list[str]:
    """Send one message on every channel of the pipeline team; returns the errors."""
    if not config.pipeline_team:
        return []
    payload = {"source": "churnhouse", "subject": subject, "text": text, **fields}
    slack = {"text": f"*{subject}*\n```{text[:2900]}```"}
    errors = []
    for channel in config.teams[config.pipeline_team].channels:
        try:
            deliver(channel, config.connections[channel.connection], subject, text, payload, slack)
            print(f"alerts: {channel.key}: {subject}", flush=True)
        except ChannelFailed as error:
            errors.append(str(error))
            print(f"alerts: {channel.key}: could not send {subject!r}: {error}", flush=True)
    return errors


def failure_message(dag_id: str, run_id: str, task_id: str, interval: str, error: str) -> tuple:
    subject = f"[churnhouse] night FAILED: {dag_id} {task_id} ({interval})"
    text = (
        f"The night {run_id} ({interval}) failed at task {task_id}; nothing new was "
        f"published and yesterday's tables stay in place.\n\n{error}"
    )
    fields = {
        "event": "night_failed",
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "interval": interval,
        "error": error,
    }
    return subject, text, fields


def failed_channels_message(failed) -> tuple:
    """Channels that did not take tonight's digest: their items wait for the next night."""
    lines = [f"- {d.channel.key}: {len(d.digest.items)} item(s), {d.error}" for d in failed]
    subject = f"[churnhouse] {len(failed)} alert channel(s) failed; retried next night"
    text = "These channels did not take tonight's digest:\n" + "\n".join(lines)
    fields = {
        "event": "channels_failed",
        "channels": [
            {"channel": d.channel.key, "items": len(d.digest.items), "error": d.error}
            for d in failed
        ],
    }
    return subject, text, fields


def stale_publication(
    config: AlertsConfig, as_of: datetime | None, now: datetime | None = None
) -> tuple | None:
    """(subject, text, fields) when the published as_of is older than the threshold."""
    now = now or _now()
    limit = timedelta(hours=config.freshness_hours)
    if as_of is not None and now - as_of <= limit:
        return None
    age = "nothing is published" if as_of is None else f"published as_of is {as_of:%Y-%m-%d %H:%M}"
    hours = None if as_of is None else round((now - as_of).total_seconds() / 3600, 1)
    subject = f"[churnhouse] STALE: {age} UTC"
    text = (
        f"{age} UTC, {hours} hours ago at {now:%Y-%m-%d %H:%M} UTC; the threshold is "
        f"{config.freshness_hours:g} hours. BI tools are reading old tables."
    )
    fields = {
        "event": "stale_publication",
        "as_of": as_of.isoformat() if as_of else None,
        "age_hours": hours,
        "threshold_hours": config.freshness_hours,
    }
    return subject, text, fields


def check_freshness(config: AlertsConfig, warehouse, now: datetime | None = None) -> bool:
    """Send the freshness alert when the publication is stale; True when it was stale."""
    from churnhouse.alerts.items import publication

    if not config.pipeline_team:
        return False
    current = publication(warehouse)
    message = stale_publication(config, current.as_of if current else None, now)
    if message is None:
        return False
    send_to_data_team(config, *message)
    return True
