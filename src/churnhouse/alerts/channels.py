"""Delivery: a Slack incoming webhook, a generic JSON webhook, e-mail over SMTP.

Each send either delivers or raises ChannelFailed (HTTP status >= 300, a refused
connection, an SMTP error); the caller then leaves the items unsent for the next
night. Messages never carry a secret; errors name the connection, not its URL.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage

from churnhouse.alerts.connections import Endpoint

TIMEOUT_SECONDS = 20


class ChannelFailed(RuntimeError):
    """The channel did not take the message; its items stay unsent."""


def post_json(endpoint: Endpoint, payload: dict) -> None:
    """POST `payload` as JSON to the connection's URL (Slack webhooks take the same)."""
    import requests

    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    try:
        response = requests.post(
            endpoint.url,
            data=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as error:
        raise ChannelFailed(f"{endpoint}: {type(error).__name__}") from None
    if response.status_code >= 300:
        raise ChannelFailed(f"{endpoint}: HTTP {response.status_code}")


def send_email(
    endpoint: Endpoint, to: tuple[str, ...], subject: str, text: str, sender: str | None = None
) -> None:
    """One plain-text e-mail through the SMTP connection (`ssl` / `starttls` in its extras)."""
    extra = {key: str(value).lower() for key, value in endpoint.extra.items()}
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = (
        sender or endpoint.extra.get("from_email") or endpoint.login or "churnhouse@localhost"
    )
    message["To"] = ", ".join(to)
    message.set_content(text)
    # Our extras (`ssl`, `starttls`), or the SMTP provider's (`disable_ssl`, `disable_tls`).
    use_ssl = endpoint.scheme == "smtps" or _flag(extra, "ssl", "disable_ssl")
    starttls = not use_ssl and _flag(extra, "starttls", "disable_tls")
    port = endpoint.port or (465 if use_ssl else 25)
    try:
        if use_ssl:
            client = smtplib.SMTP_SSL(
                endpoint.host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(endpoint.host, port, timeout=TIMEOUT_SECONDS)
        with client:
            if starttls:
                client.starttls(context=ssl.create_default_context())
            if endpoint.login and endpoint.password:
                client.login(endpoint.login, endpoint.password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise ChannelFailed(f"{endpoint}: SMTP {type(error).__name__}") from None


def _flag(extra: dict, ours: str, providers_opposite: str) -> bool:
    """Our extra `ours` is true, or the SMTP provider's `providers_opposite` is false."""
    return extra.get(ours) == "true" or extra.get(providers_opposite) == "false"


def deliver(channel, endpoint: Endpoint, subject: str, text: str, payload: dict, slack: dict):
    """Send one message on a configured channel, in that channel type's form."""
    if channel.type == "email":
        send_email(endpoint, channel.to, subject, text, channel.sender)
    elif channel.type == "slack":
        post_json(endpoint, slack)
    else:
        post_json(endpoint, payload)
