"""A channel's secrets from the Airflow connection its routing line names.

`airflow.sdk.Connection.get` when Airflow is importable (it reads the
`AIRFLOW_CONN_*` variables, the metadata database and any secrets backend),
else the `AIRFLOW_CONN_<ID>` variable's URI. Scheme, host, port and path make a
webhook's URL; an SMTP connection gives host, port, login, password and, in its
extras, `from_email`, `ssl` or `starttls`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from churnhouse.errors import PermanentError


class ConnectionMissing(PermanentError):
    """The routing file names a connection that Airflow does not know."""


@dataclass(frozen=True)
class Endpoint:
    conn_id: str
    scheme: str
    host: str
    port: int | None
    path: str
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        """The webhook URL: scheme://host[:port]/path[?extras] (a Slack-style password
        holding the whole URL wins)."""
        if self.password and self.password.startswith(("http://", "https://")):
            return self.password
        scheme = self.scheme if self.scheme in ("http", "https") else "https"
        port = f":{self.port}" if self.port else ""
        path = self.path if self.path.startswith("/") or not self.path else "/" + self.path
        query = f"?{urlencode(self.extra)}" if self.extra else ""
        return f"{scheme}://{self.host}{port}{path}{query}"

    def __str__(self) -> str:  # never print a secret: the host and the connection id only
        return f"{self.conn_id} ({self.host})"


def resolve(conn_id: str) -> Endpoint:
    """The endpoint of one Airflow connection; ConnectionMissing when it is not defined."""
    connection = _from_airflow(conn_id)
    if connection is not None:
        return connection
    uri = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not uri:
        raise ConnectionMissing(
            f"unknown connection {conn_id!r}: define the Airflow connection "
            f"(e.g. AIRFLOW_CONN_{conn_id.upper()}='https://host/path')"
        )
    return _from_uri(conn_id, uri)


def _from_airflow(conn_id: str) -> Endpoint | None:
    try:
        from airflow.sdk import Connection
    except ImportError:
        return None
    try:
        conn = Connection.get(conn_id)
    except Exception:  # not defined (AirflowNotFoundException) or no Airflow set up here
        return None
    return Endpoint(
        conn_id=conn_id,
        scheme=conn.conn_type or "https",
        host=conn.host or "",
        port=conn.port,
        path=conn.schema or "",
        login=conn.login,
        password=conn.password,
        extra=dict(conn.extra_dejson or {}),
    )


def _from_uri(conn_id: str, uri: str) -> Endpoint:
    parts = urlsplit(uri)
    return Endpoint(
        conn_id=conn_id,
        scheme=parts.scheme,
        host=parts.hostname or "",
        port=parts.port,
        path=unquote(parts.path.lstrip("/")),
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        extra=dict(parse_qsl(parts.query)),
    )
