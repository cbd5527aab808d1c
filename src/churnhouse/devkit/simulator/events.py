"""Product analytics: Segment-spec calls in gzip partitions by the day they were received.

Wire style by default (camelCase keys, as segment-analytics-python sends them), or
warehouse style (snake_case) with `style="warehouse"`; the calls are the same either
way, so the truth does not depend on the style. Each company ties its users to its
workspace one way (sources.md section 3): a top-level group id on every activity call,
`context.groupId`, or (`GROUP_ONLY_SHARE` of companies) no group id at all, so only the
users' `group` calls say which workspace their track, page and screen calls count for.

The companies of a chunk are stepped day by day, so a partition is complete
(no later event can be received on an earlier day) and is written as soon as
its day is done: memory holds about a week of one chunk's events. Lines are
built as text (the keys and values are known safe), which keeps ten million
events affordable.

Mess, each counted: late arrivals (1-5 days), duplicate deliveries (same
message, sometimes re-delivered later into another partition), +08:00 /
-05:00 / -03:00 / Z offsets, one bad line of a known kind for every
`BAD_EVERY`-th company (see `BAD_KINDS`), a call of a type the contract does not
list, activity before a user's first group call (it reaches no workspace), and days
a user spends in a guest workspace no CRM account has (a later group call brings
them back).
"""

from __future__ import annotations

import gzip
import random
from bisect import bisect_right
from collections import Counter, defaultdict
from datetime import date
from functools import cache
from pathlib import Path

from churnhouse.devkit.simulator.catalog import ACTIVATION_EVENT, EVENTS
from churnhouse.devkit.simulator.clock import DAY, Calendar, clock_texts, day_text
from churnhouse.devkit.simulator.draw import messy_email
from churnhouse.devkit.simulator.model import Company, Stretch

LATE_SHARE = 0.01
DUPLICATE_SHARE = 0.004
LATER_REDELIVERY_SHARE = 0.3  # of duplicates: re-sent hours later, maybe into the next day
IDENTIFY_SHARE = 0.02  # identify calls on an active user-day (besides each user's first day)
PER_DAY = (1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6)  # events of a user on a day they are active
PER_DAY_CHOICES = len(PER_DAY)
BAD_EVERY = 25  # company index % BAD_EVERY == k emits one bad line of BAD_KINDS[k]
BAD_KINDS = ("events_invalid_json", "events_missing_key", "events_bad_timestamp")
UNKNOWN_TYPE_EVERY = 3  # company index % BAD_EVERY == this sends one call of an unlisted type
UNKNOWN_TYPE = "experiment_viewed"
STYLES = ("wire", "warehouse")
GROUP_ONLY_SHARE = 0.4  # companies whose activity calls carry no group id
CONTEXT_GROUP_SHARE = 0.2  # companies whose activity calls carry context.groupId
LATE_GROUP_SHARE = 0.1  # a new user's group call comes after some of that day's activity
GUEST_DAY_SHARE = 0.01  # a day a group-only user spends in a guest workspace
ALIAS_SHARE = 0.1  # new users who also send an alias call
PAGE_SHARE = 0.25  # activity calls that are page calls
SCREEN_SHARE = 0.03  # ... and screen calls (the rest are track calls)
PAGES = ('"Dashboards", "properties": {"path": "/dashboards"}',
         '"Reports", "properties": {"path": "/reports"}',
         '"Settings", "properties": {"path": "/settings"}')  # fmt: skip
SCREENS = ('"Home", "properties": {}', '"Projects", "properties": {}')
LIBRARY = '{"library": {"name": "analytics-python", "version": "2.3.4"}}'
# The keys that differ between the two styles.
KEYS = {
    "wire": {"message": "messageId", "user": "userId", "anonymous": "anonymousId",
             "group": "groupId", "received": "receivedAt", "sent": "sentAt"},
    "warehouse": {"message": "message_id", "user": "user_id", "anonymous": "anonymous_id",
                  "group": "group_id", "received": "received_at", "sent": "sent_at"},
}  # fmt: skip
BAD_TIMESTAMPS = ("yesterday 10am", "31/12/2024 10:00", "not a time")
GZIP_LEVEL = 3


def _weighted_events() -> tuple[tuple[str, str], ...]:
    """(event, properties JSON) pairs repeated by weight, so one draw picks both."""
    combos = []
    for event, weight, variants in EVENTS:
        for properties in variants:
            combos.extend([(event, properties)] * round(weight * 300 / len(variants)))
    return tuple(combos)


COMBOS = _weighted_events()
COMBO_CHOICES = len(COMBOS)


# (month, day) → usage level; linear in between. Dips ramp in and out over a week or so,
# so no night falls far below the week before it (the raw volume gate compares them).
SEASON = (
    ((1, 1), 0.6), ((1, 8), 1.0), ((7, 27), 1.0), ((8, 6), 0.7), ((8, 24), 0.7),
    ((9, 3), 1.0), ((12, 17), 1.0), ((12, 24), 0.6), ((12, 31), 0.6),
)  # fmt: skip
WEEKEND = 0.7


@cache
def day_factor(day: int) -> float:
    """Quieter weekends, an August dip and a year-end dip."""
    moment = date.fromordinal(day + 719_163)  # 719_163 = 1970-01-01
    weekend = WEEKEND if moment.weekday() >= 5 else 1.0
    points = [(date(moment.year, m, d).toordinal(), level) for (m, d), level in SEASON]
    today = moment.toordinal()
    for (left, low), (right, high) in zip(points, points[1:], strict=False):
        if left <= today <= right:
            return weekend * (low + (high - low) * (today - left) / (right - left))
    return weekend * SEASON[-1][1]


def stretch_factor(stretch: Stretch, moment: int) -> float:
    """How much the company uses the product at `moment` of this stretch, given its story."""
    story, decided = stretch.story, stretch.cancel_requested
    if story == "trial":
        return 0.3 if stretch.churned and moment >= stretch.end - 4 * DAY else 1.3
    if decided is None or story == "involuntary":
        return 1.0
    if story == "habit_change":  # fades over months, then stops before the cancellation
        if moment >= decided - 25 * DAY:
            return 0.0
        return min(1.0, (decided - 25 * DAY - moment) / (75 * DAY))
    if story == "graduated":  # stops early: the project is done
        return 0.0 if moment >= decided - 35 * DAY else 1.0
    return 0.35 if moment >= decided else 1.0


class EventSink:
    """One chunk's lines by received day; a day's partition file is written once complete."""

    def __init__(self, root: Path, chunk: int):
        self.root, self.chunk = root, chunk
        self.pending: dict[int, list[str]] = defaultdict(list)
        self.lines_written = 0
        self.files_written = 0

    def add(self, day: int, line: str) -> None:
        self.pending[day].append(line)

    def write_day(self, day: int) -> None:
        lines = self.pending.pop(day, None)
        if not lines:
            return
        folder = self.root / f"dt={day_text(day)}"
        folder.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(lines) + "\n").encode("utf-8")
        path = folder / f"part-{self.chunk:04d}.jsonl.gz"
        path.write_bytes(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))
        self.lines_written += len(lines)
        self.files_written += 1


class Usage:
    """One company's product use, stepped one day at a time.

    The truth is recorded as the calls are made, by the rule of sources.md section 3:
    an activity call counts for its own group id, else for the workspace of its user's
    latest group call at or before it, else for none.
    """

    def __init__(
        self, company: Company, seed: int, calendar: Calendar, counts: Counter, style: str
    ):
        self.company, self.counts = company, counts
        self.rng = random.Random(f"{seed}:{company.index}:events")
        self.as_of = calendar.as_of
        self.spans = [
            (s.start, min(s.end, self.as_of), s)
            for s in company.stretches
            if s.start < min(s.end, self.as_of)
        ]
        self.first_day = min((s[0] for s in self.spans), default=0) // DAY
        self.last_day = (max((s[1] for s in self.spans), default=0) - 1) // DAY
        self.prefix = f"{company.index:08x}-{seed & 0xFFFF:04x}-4000-8000-"
        self.sequence = 0
        self.keys = keys = KEYS[style]
        workspace = company.workspace_id
        roll = self.rng.random()
        if roll < GROUP_ONLY_SHARE:
            self.own_group = None  # the workspace comes from group calls only
            group_part = ""
        elif roll < GROUP_ONLY_SHARE + CONTEXT_GROUP_SHARE:
            self.own_group = workspace
            group_part = f'"context": {{"{keys["group"]}": "{workspace}"}}, '
        else:
            self.own_group = workspace
            group_part = f'"{keys["group"]}": "{workspace}", '
        self.users = [(u, f'"{keys["user"]}": "{u.user_id}", {group_part}') for u in company.users]
        self.seen_users: set[str] = set()
        self.groups: dict[str, tuple[list[int], list[str]]] = {}  # user → group calls
        self.guests = 0
        self.bad_kind = (
            BAD_KINDS[company.index % BAD_EVERY] if company.index % BAD_EVERY < 3 else None
        )
        self.unknown_due = company.index % BAD_EVERY == UNKNOWN_TYPE_EVERY
        self.activation_due = company.activated

    def _window(self, day: int) -> tuple[int, int, float]:
        """The part of `day` inside a stretch and the usage level then (best stretch wins)."""
        start, end = day * DAY, (day + 1) * DAY
        best = (start, start, 0.0)
        for low, high, stretch in self.spans:
            if low < end and high > start:
                factor = stretch_factor(stretch, start + DAY // 2)
                if factor > best[2]:
                    best = (max(low, start), min(high, end), factor)
        return best

    def _workspace_at(self, user_id: str, moment: int) -> str | None:
        """The workspace this user's activity at `moment` counts for."""
        if self.own_group is not None:
            return self.own_group
        times, workspaces = self.groups.get(user_id, ((), ()))
        latest = bisect_right(times, moment) - 1
        return workspaces[latest] if latest >= 0 else None

    def _text(self, moment: int, offset: int, suffix: str, dates, clock) -> str:
        local = moment + offset
        return f"{dates[local // DAY]}T{clock[local % DAY]}{suffix}"

    def emit(self, day: int, base: float, sink: EventSink, dates: dict, clock: tuple) -> None:
        low, high, factor = self._window(day)
        if factor <= 0 or high <= low:
            return
        if self.bad_kind:
            self._bad_line(low, sink, dates, clock)
        if self.unknown_due:
            self._unknown_type(low, sink, dates, clock)
        random, add, as_of = self.rng.random, sink.add, self.as_of
        width, level = high - low, base * factor
        company, keys = self.company, self.keys
        workspace_calls, unassigned = company.workspace_calls, company.unassigned_calls
        activity, activations = company.activity_times, company.activation_times
        message, received_key = keys["message"], keys["received"]
        for user, user_part in self.users:
            if random() >= user.rate * level:
                continue
            suffix, offset = user.offset
            if user.user_id not in self.seen_users:
                self._first_calls(user, low, width, sink, dates, clock)
            elif random() < IDENTIFY_SHARE:
                self._identify(user, low + int(random() * width), sink, dates, clock)
            elif self.own_group is None and width > 2 * 3600 and random() < GUEST_DAY_SHARE:
                self._guest_day(user, low, high, sink, dates, clock)
            active = False
            for _ in range(PER_DAY[int(random() * PER_DAY_CHOICES)]):
                moment = low + int(random() * width)
                roll = random()
                late = roll < LATE_SHARE
                if late:
                    received = moment + DAY + int(random() * 4 * DAY)
                else:
                    received = moment + 1 + int(roll * 1e6) % 20
                if received >= as_of:
                    continue
                kind = random()
                if self.activation_due:
                    call = f'"track", "event": "{ACTIVATION_EVENT}", '
                    properties = '{"template": "blank"}'
                    self.activation_due = False
                    is_activation = is_track = True
                elif kind < PAGE_SHARE:
                    call = f'"page", "name": {PAGES[int(kind * 1e6) % len(PAGES)]}, '
                    properties = None
                    is_activation = is_track = False
                elif kind < PAGE_SHARE + SCREEN_SHARE:
                    call = f'"screen", "name": {SCREENS[int(kind * 1e6) % len(SCREENS)]}, '
                    properties = None
                    is_activation = is_track = False
                else:
                    event, properties = COMBOS[int(random() * COMBO_CHOICES)]
                    call = f'"track", "event": "{event}", '
                    is_activation = event == ACTIVATION_EVENT
                    is_track = True
                self.sequence += 1
                tail = f', "properties": {properties}}}' if properties is not None else "}"
                stamp = self._text(moment, offset, suffix, dates, clock)
                line = (
                    f'{{"{message}": "{self.prefix}{self.sequence:012x}", "type": {call}'
                    f'{user_part}"timestamp": "{stamp}", '
                    f'"{received_key}": "{dates[received // DAY]}T{clock[received % DAY]}Z"{tail}'
                )
                add(received // DAY, line)
                workspace = self._workspace_at(user.user_id, moment)
                if workspace is None:
                    unassigned[user.user_id].append(moment)
                else:
                    workspace_calls[workspace].append(moment)
                if workspace == company.workspace_id:
                    activity.append(moment)
                    if is_track:
                        company.track_times.append(moment)
                    active = True
                    if is_activation:
                        activations.append(moment)
                if late:
                    self.counts["late_events"] += 1
                if roll > 1 - DUPLICATE_SHARE:
                    self._duplicate(line, received, sink, dates, clock)
            if active:
                company.active_user_days.add((day, user.user_id))

    def _duplicate(self, line: str, received: int, sink: EventSink, dates, clock) -> None:
        """At-least-once delivery: the same call again, sometimes re-sent hours later."""
        roll = self.rng.random()
        again = received + 1 + int(roll / LATER_REDELIVERY_SHARE * 2 * DAY)
        if roll < LATER_REDELIVERY_SHARE and again < self.as_of:
            key = self.keys["received"]
            old = f'"{key}": "{dates[received // DAY]}T{clock[received % DAY]}Z"'
            new = f'"{key}": "{dates[again // DAY]}T{clock[again % DAY]}Z"'
            sink.add(again // DAY, line.replace(old, new))
        else:
            sink.add(received // DAY, line)
        self.counts["duplicate_event_deliveries"] += 1

    def _first_calls(self, user, low: int, width: int, sink: EventSink, dates, clock) -> None:
        """A new user: identify, group (usually at the start of the day), maybe alias."""
        rng = self.rng
        self._identify(user, low + int(rng.random() * width), sink, dates, clock)
        if rng.random() < LATE_GROUP_SHARE:
            moment = low + int(rng.random() * width)  # activity before it reaches no workspace
        else:
            moment = low + 1 + int(rng.random() * 60)
        self._group(user, moment, self.company.workspace_id, sink, dates, clock)
        if rng.random() < ALIAS_SHARE:
            self._alias(user, low + int(rng.random() * width), sink, dates, clock)

    def _guest_day(self, user, low: int, high: int, sink: EventSink, dates, clock) -> None:
        """A day in a guest workspace no CRM account has, then back to the company's own."""
        self.guests += 1
        guest = f"ws_guest_{self.company.index:06d}_{self.guests:03d}"
        self._group(user, low + 1 + int(self.rng.random() * 60), guest, sink, dates, clock)
        self._group(user, high - 1, self.company.workspace_id, sink, dates, clock)

    def _envelope(self, user, moment: int, received: int, dates, clock) -> str:
        """The keys a library puts on identify, group and alias calls (wire or warehouse)."""
        keys = self.keys
        suffix, offset = user.offset
        sent = received - 1
        self.sequence += 1
        return (
            f'"{keys["message"]}": "{self.prefix}{self.sequence:012x}", '
            f'"{keys["user"]}": "{user.user_id}", '
            f'"{keys["anonymous"]}": "anon-{user.user_id[2:]}", '
            f'"timestamp": "{self._text(moment, offset, suffix, dates, clock)}", '
            f'"{keys["sent"]}": "{dates[sent // DAY]}T{clock[sent % DAY]}Z", '
            f'"{keys["received"]}": "{dates[received // DAY]}T{clock[received % DAY]}Z"'
        )

    def _group(self, user, moment: int, workspace: str, sink: EventSink, dates, clock) -> None:
        received = moment + 2
        if received >= self.as_of:
            return
        envelope = self._envelope(user, moment, received, dates, clock)
        line = (
            f'{{"type": "group", {envelope}, "{self.keys["group"]}": "{workspace}", '
            f'"traits": {{"name": "Workspace {workspace}"}}, "context": {LIBRARY}}}'
        )
        sink.add(received // DAY, line)
        times, workspaces = self.groups.setdefault(user.user_id, ([], []))
        times.append(moment)  # group calls of a user are made in time order
        workspaces.append(workspace)
        self.company.workspace_calls[workspace].append(moment)
        self.counts["group_calls"] += 1

    def _alias(self, user, moment: int, sink: EventSink, dates, clock) -> None:
        received = moment + 2
        if received >= self.as_of:
            return
        envelope = self._envelope(user, moment, received, dates, clock)
        line = f'{{"type": "alias", {envelope}, "previousId": "anon-{user.user_id[2:]}"}}'
        sink.add(received // DAY, line)
        self.counts["alias_calls"] += 1

    def _identify(self, user, moment: int, sink: EventSink, dates, clock) -> None:
        received = moment + 2
        if received >= self.as_of:
            return
        self.seen_users.add(user.user_id)
        envelope = self._envelope(user, moment, received, dates, clock)
        email = messy_email(self.rng, user.email)
        if self.keys is KEYS["wire"]:  # traits on the call, as the libraries send them
            traits = f'"traits": {{"email": "{email}"}}, "context": {LIBRARY}'
        else:
            traits = f'"context": {{"traits": {{"email": "{email}"}}}}'
        sink.add(received // DAY, f'{{"type": "identify", {envelope}, {traits}}}')
        self.counts["identify_events"] += 1

    def _unknown_type(self, moment: int, sink: EventSink, dates, clock) -> None:
        """A call of a type the contract does not list: kept raw, ignored by the marts."""
        self.unknown_due = False
        received = moment + 3
        if received >= self.as_of:
            return
        user = self.company.users[0]
        envelope = self._envelope(user, moment, received, dates, clock)
        line = (
            f'{{"type": "{UNKNOWN_TYPE}", {envelope}, '
            f'"{self.keys["group"]}": "{self.company.workspace_id}", '
            f'"properties": {{"experiment": "new_onboarding", "variant": "b"}}}}'
        )
        sink.add(received // DAY, line)
        self.counts["events_unknown_type"] += 1

    def _bad_line(self, moment: int, sink: EventSink, dates, clock) -> None:
        """One line the pipeline must quarantine; its content is unique to this company."""
        kind, self.bad_kind = self.bad_kind, None
        received = moment + 5
        if received >= self.as_of:
            return
        self.sequence += 1
        keys = self.keys
        user = self.company.users[0].user_id
        group = self.company.workspace_id
        message = f"{self.prefix}{self.sequence:012x}"
        stamp = f"{dates[moment // DAY]}T{clock[moment % DAY]}Z"
        arrived = f"{dates[received // DAY]}T{clock[received % DAY]}Z"
        fields = {
            "message_id": f'"{keys["message"]}": "{message}"',
            "type": '"type": "track"',
            "timestamp": f'"timestamp": "{stamp}"',
        }
        variant = self.company.index // BAD_EVERY
        if kind == "events_missing_key":
            fields.pop(("message_id", "type", "timestamp")[variant % 3])
        if kind == "events_bad_timestamp":
            fields["timestamp"] = f'"timestamp": "{BAD_TIMESTAMPS[variant % 3]}"'
        line = (
            "{" + ", ".join(fields.values()) + f', "event": "login", "{keys["user"]}": "{user}", '
            f'"{keys["group"]}": "{group}", "{keys["received"]}": "{arrived}", "properties": {{}}}}'
        )
        if kind == "events_invalid_json":
            line = line[: len(line) // 2]
        sink.add(received // DAY, line)
        self.counts[kind] += 1


def write_events(
    root: Path,
    chunk: int,
    companies: list[Company],
    seed: int,
    calendar: Calendar,
    style: str = "wire",
) -> Counter:
    """Write chunk `chunk`'s partitions in key style `style` (wire or warehouse); fills each
    company's activity truth (`activity_times`, `active_user_days`, ...); returns counts."""
    if style not in STYLES:
        raise ValueError(f"events style must be one of {', '.join(STYLES)}, not {style!r}")
    counts: Counter = Counter()
    usages = [Usage(c, seed, calendar, counts, style) for c in companies if c.users]
    usages = [u for u in usages if u.spans]
    sink = EventSink(root, chunk)
    if not usages:
        return counts
    first = min(u.first_day for u in usages)
    last = calendar.as_of // DAY - 1
    dates = {day: day_text(day) for day in range(first - 2, last + 3)}
    clock = clock_texts()
    for day in range(first, last + 1):
        base = day_factor(day)
        for usage in usages:
            if usage.first_day <= day <= usage.last_day:
                usage.emit(day, base, sink, dates, clock)
        sink.write_day(day)
    counts["event_lines"] = sink.lines_written
    counts["event_files"] = sink.files_written
    for company in companies:
        company.activity_times.sort()
        company.track_times.sort()
        counts["events_activity_without_workspace"] += sum(
            len(m) for m in company.unassigned_calls.values()
        )
    return counts
