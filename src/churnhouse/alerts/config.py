"""The routing file (`CHURN_ALERTS_CONFIG`): teams, their channels, routes by reason.

Read with line numbers so a refused file names the line to fix. Secrets are never
in the file: a channel names an Airflow connection that holds its URL or password.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from churnhouse.errors import PermanentError

CONFIG_SETTING = "CHURN_ALERTS_CONFIG"
CHANNEL_TYPES = ("slack", "email", "webhook")
EVENTS = ("churn", "cancel_request", "save", "at_risk")
# churn_events.reason_category holds the taxonomy's categories plus these two.
EXTRA_CATEGORIES = ("payment_failed", "unknown")
ANY = "*"
RISK_LEVELS = ("high",)


class AlertsConfigError(PermanentError):
    """The routing file is refused; the message names every bad line."""


@dataclass(frozen=True)
class Channel:
    team: str
    type: str
    connection: str
    line: int
    to: tuple[str, ...] = ()
    sender: str | None = None

    @property
    def key(self) -> str:
        """The channel's identity in the ledger (what was sent where)."""
        recipients = f":{','.join(self.to)}" if self.to else ""
        return f"{self.team}:{self.type}:{self.connection}{recipients}"


@dataclass(frozen=True)
class Team:
    name: str
    channels: tuple[Channel, ...]
    line: int


@dataclass(frozen=True)
class Route:
    team: str
    line: int
    reason_categories: tuple[str, ...] = ()
    risk_level: str | None = None
    segments: tuple[str, ...] = ()
    min_mrr: float | None = None
    events: tuple[str, ...] = ()
    include_contacts: bool = False

    def matches(self, item) -> bool:
        if self.events and item.event not in self.events:
            return False
        if item.event == "at_risk":
            if self.risk_level is None:
                return False
        elif not self.reason_categories or (
            ANY not in self.reason_categories and item.reason_category not in self.reason_categories
        ):
            return False
        if self.segments and item.segment not in self.segments:
            return False
        return self.min_mrr is None or (item.mrr or 0) >= self.min_mrr


@dataclass(frozen=True)
class AlertsConfig:
    path: Path
    teams: dict[str, Team]
    routes: tuple[Route, ...]
    lookback_days: int = 7
    link: str | None = None
    pipeline_team: str | None = None
    freshness_hours: float = 36.0
    connections: dict[str, object] = field(default_factory=dict, repr=False)

    def channels(self) -> list[Channel]:
        return [channel for team in self.teams.values() for channel in team.channels]


def configured_path() -> Path | None:
    """`CHURN_ALERTS_CONFIG`, or None when alerts are off."""
    value = os.environ.get(CONFIG_SETTING, "").strip()
    return Path(value) if value else None


def known_categories() -> set[str]:
    """The reason categories of the taxonomy seed, plus payment_failed and unknown."""
    from churnhouse.config import dbt_project_dir

    seed = dbt_project_dir() / "seeds" / "reason_taxonomy.csv"
    with open(seed, encoding="utf-8", newline="") as handle:
        categories = {row["category"] for row in csv.DictReader(handle)}
    return categories | set(EXTRA_CATEGORIES)


class _Reader:
    """Walks the YAML node tree and collects every problem with its line number."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def problem(self, node, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.path}:{line}: {message}")

    def mapping(self, node, allowed: set[str], where: str) -> dict:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{where} must be a mapping of key: value")
            return {}
        entries = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                self.problem(key_node, f"unknown key {key!r} in {where} (known: {known})")
                continue
            entries[key] = value_node
        return entries

    def sequence(self, node, where: str) -> list:
        import yaml

        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"{where} must be a list")
            return []
        return list(node.value)

    def text(self, node, where: str) -> str | None:
        import yaml

        if not isinstance(node, yaml.ScalarNode) or node.value == "":
            self.problem(node, f"{where} must be a single value")
            return None
        return node.value

    def texts(self, node, where: str) -> tuple[str, ...]:
        import yaml

        if isinstance(node, yaml.SequenceNode):
            values = [self.text(item, where) for item in node.value]
            return tuple(value for value in values if value is not None)
        value = self.text(node, where)
        return (value,) if value is not None else ()

    def number(self, node, where: str) -> float | None:
        value = self.text(node, where)
        try:
            return float(value) if value is not None else None
        except ValueError:
            self.problem(node, f"{where} must be a number, not {value!r}")
            return None

    def flag(self, node, where: str) -> bool:
        value = (self.text(node, where) or "").lower()
        if value not in ("true", "false", "yes", "no"):
            self.problem(node, f"{where} must be true or false")
        return value in ("true", "yes")


def load_config(path: Path | str, resolve_connections: bool = True) -> AlertsConfig:
    """Read and check the routing file; raise AlertsConfigError naming every bad line."""
    import yaml

    path = Path(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise AlertsConfigError(f"{CONFIG_SETTING}: no such file {path}") from error
    except yaml.YAMLError as error:
        raise AlertsConfigError(f"{path}: not valid YAML: {error}") from error
    reader = _Reader(path)
    top = reader.mapping(root, {"teams", "routes", "lookback_days", "link", "pipeline"}, "the file")
    teams = _read_teams(reader, top.get("teams"))
    routes = _read_routes(reader, top.get("routes"), teams)
    if "teams" not in top:
        reader.problem(root, "no teams: give at least one team with its channels")
    settings = {}
    if "lookback_days" in top:
        days = reader.number(top["lookback_days"], "lookback_days")
        settings["lookback_days"] = int(days) if days is not None else 7
    if "link" in top:
        settings["link"] = reader.text(top["link"], "link")
    if "pipeline" in top:
        pipeline = reader.mapping(top["pipeline"], {"team", "freshness_hours"}, "pipeline")
        team = reader.text(pipeline["team"], "pipeline team") if "team" in pipeline else None
        if team is not None and team not in teams:
            reader.problem(pipeline["team"], f"unknown team {team!r} (teams: {_names(teams)})")
        settings["pipeline_team"] = team
        if "freshness_hours" in pipeline:
            hours = reader.number(pipeline["freshness_hours"], "freshness_hours")
            settings["freshness_hours"] = hours if hours is not None else 36.0
    connections = {}
    if resolve_connections:
        connections = _resolve_connections(reader, teams)
    if reader.problems:
        raise AlertsConfigError(
            "the alerts routing file is refused:\n  " + "\n  ".join(reader.problems)
        )
    return AlertsConfig(
        path=path, teams=teams, routes=tuple(routes), connections=connections, **settings
    )


def _names(teams: dict) -> str:
    return ", ".join(teams) or "none defined"


def _read_teams(reader: _Reader, node) -> dict[str, Team]:
    teams: dict[str, Team] = {}
    for team_node in reader.sequence(node, "teams"):
        entry = reader.mapping(team_node, {"name", "channels"}, "a team")
        name = reader.text(entry["name"], "team name") if "name" in entry else None
        if name is None:
            if "name" not in entry:
                reader.problem(team_node, "a team needs a name")
            continue
        if name in teams:
            reader.problem(entry["name"], f"team {name!r} is defined twice")
        channels = []
        for channel_node in reader.sequence(entry.get("channels"), f"channels of team {name}"):
            channel = _read_channel(reader, channel_node, name)
            if channel is not None:
                channels.append(channel)
        if not channels:
            reader.problem(team_node, f"team {name!r} has no channels")
        teams[name] = Team(name, tuple(channels), team_node.start_mark.line + 1)
    return teams


def _read_channel(reader: _Reader, node, team: str) -> Channel | None:
    entry = reader.mapping(node, {"type", "connection", "to", "from"}, f"a channel of {team}")
    channel_type = reader.text(entry["type"], "channel type") if "type" in entry else None
    connection = (
        reader.text(entry["connection"], "channel connection") if "connection" in entry else None
    )
    if channel_type is None or connection is None:
        missing = " and ".join(k for k in ("type", "connection") if k not in entry)
        if missing:
            reader.problem(node, f"a channel of team {team!r} needs {missing}")
        return None
    if channel_type not in CHANNEL_TYPES:
        reader.problem(
            entry["type"],
            f"unknown channel type {channel_type!r} (known: {', '.join(CHANNEL_TYPES)})",
        )
        return None
    to = reader.texts(entry["to"], "to") if "to" in entry else ()
    if channel_type == "email" and not to:
        reader.problem(node, f"the email channel of team {team!r} needs to: (recipients)")
    sender = reader.text(entry["from"], "from") if "from" in entry else None
    return Channel(team, channel_type, connection, node.start_mark.line + 1, tuple(to), sender)


def _read_routes(reader: _Reader, node, teams: dict[str, Team]) -> list[Route]:
    categories = known_categories()
    routes = []
    allowed = {
        "reason_category",
        "risk_level",
        "segment",
        "min_mrr",
        "events",
        "team",
        "include_contacts",
    }
    for route_node in reader.sequence(node, "routes"):
        entry = reader.mapping(route_node, allowed, "a route")
        line = route_node.start_mark.line + 1
        team = reader.text(entry["team"], "route team") if "team" in entry else None
        if "team" not in entry:
            reader.problem(route_node, "a route needs a team")
        elif team is not None and team not in teams:
            reader.problem(entry["team"], f"unknown team {team!r} (teams: {_names(teams)})")
        reasons = ()
        if "reason_category" in entry:
            reasons = reader.texts(entry["reason_category"], "reason_category")
            for reason in reasons:
                if reason != ANY and reason not in categories:
                    reader.problem(
                        entry["reason_category"],
                        f"unknown reason category {reason!r} "
                        f"(known: {', '.join(sorted(categories))}, or '*')",
                    )
        risk = reader.text(entry["risk_level"], "risk_level") if "risk_level" in entry else None
        if risk is not None and risk not in RISK_LEVELS:
            reader.problem(entry["risk_level"], f"risk_level can only be {RISK_LEVELS[0]!r}")
        if not reasons and risk is None:
            reader.problem(route_node, "a route needs a reason_category or a risk_level")
        events = reader.texts(entry["events"], "events") if "events" in entry else ()
        for event in events:
            if event not in EVENTS:
                reader.problem(
                    entry["events"], f"unknown event {event!r} (known: {', '.join(EVENTS)})"
                )
        routes.append(
            Route(
                team=team or "",
                line=line,
                reason_categories=reasons,
                risk_level=risk,
                segments=reader.texts(entry["segment"], "segment") if "segment" in entry else (),
                min_mrr=reader.number(entry["min_mrr"], "min_mrr") if "min_mrr" in entry else None,
                events=events,
                include_contacts=(
                    reader.flag(entry["include_contacts"], "include_contacts")
                    if "include_contacts" in entry
                    else False
                ),
            )
        )
    return routes


def _resolve_connections(reader: _Reader, teams: dict[str, Team]) -> dict[str, object]:
    from churnhouse.alerts.connections import ConnectionMissing, resolve

    resolved = {}
    for team in teams.values():
        for channel in team.channels:
            if channel.connection in resolved:
                continue
            try:
                resolved[channel.connection] = resolve(channel.connection)
            except ConnectionMissing as error:
                reader.problems.append(f"{reader.path}:{channel.line}: {error}")
    return resolved
