"""Product analytics: Segment-style calls in gzip partitions by the day they were received.

The companies of a chunk are stepped day by day, so a partition is complete
(no later event can be received on an earlier day) and is written as soon as
its day is done: memory holds about a week of one chunk's events. Lines are
built as text (the keys and values are known safe), which keeps ten million
events affordable.

Mess, each counted: late arrivals (1-5 days), duplicate deliveries (same
message, sometimes re-delivered later into another partition), +08:00 /
-05:00 / -03:00 / Z offsets, and one bad line of a known kind for every
`BAD_EVERY`-th company (see `BAD_KINDS`).
"""

from __future__ import annotations

import gzip
import random
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
BAD_KINDS = (
    "events_invalid_json",
    "events_missing_key",
    "events_bad_timestamp",
    "events_track_without_group",
)
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
    """One company's product use, stepped one day at a time."""

    def __init__(self, company: Company, seed: int, calendar: Calendar, counts: Counter):
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
        self.users = [
            (u, f'"user_id": "{u.user_id}", "group_id": "{company.workspace_id}", ')
            for u in company.users
        ]
        self.seen_users: set[str] = set()
        self.bad_kind = (
            BAD_KINDS[company.index % BAD_EVERY] if company.index % BAD_EVERY < 4 else None
        )
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

    def emit(self, day: int, base: float, sink: EventSink, dates: dict, clock: tuple) -> None:
        low, high, factor = self._window(day)
        if factor <= 0 or high <= low:
            return
        if self.bad_kind:
            self._bad_line(low, sink, dates, clock)
        random, add, as_of = self.rng.random, sink.add, self.as_of
        track, width, level = self.company.track_times, high - low, base * factor
        activations = self.company.activation_times
        for user, user_part in self.users:
            if random() >= user.rate * level:
                continue
            suffix, offset = user.offset
            if user.user_id not in self.seen_users or random() < IDENTIFY_SHARE:
                self._identify(user, low + int(random() * width), sink, dates, clock)
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
                if self.activation_due:
                    event, properties = ACTIVATION_EVENT, '{"template": "blank"}'
                    self.activation_due = False
                else:
                    event, properties = COMBOS[int(random() * COMBO_CHOICES)]
                self.sequence += 1
                local = moment + offset
                line = (
                    f'{{"message_id": "{self.prefix}{self.sequence:012x}", "type": "track", '
                    f'"event": "{event}", {user_part}"timestamp": '
                    f'"{dates[local // DAY]}T{clock[local % DAY]}{suffix}", "received_at": '
                    f'"{dates[received // DAY]}T{clock[received % DAY]}Z", '
                    f'"properties": {properties}}}'
                )
                add(received // DAY, line)
                track.append(moment)
                active = True
                if event == ACTIVATION_EVENT:
                    activations.append(moment)
                if late:
                    self.counts["late_events"] += 1
                if roll > 1 - DUPLICATE_SHARE:
                    self._duplicate(line, received, sink, dates, clock)
            if active:
                self.company.track_user_days.add((day, user.user_id))

    def _duplicate(self, line: str, received: int, sink: EventSink, dates, clock) -> None:
        """At-least-once delivery: the same call again, sometimes re-sent hours later."""
        roll = self.rng.random()
        again = received + 1 + int(roll / LATER_REDELIVERY_SHARE * 2 * DAY)
        if roll < LATER_REDELIVERY_SHARE and again < self.as_of:
            old = f'"received_at": "{dates[received // DAY]}T{clock[received % DAY]}Z"'
            new = f'"received_at": "{dates[again // DAY]}T{clock[again % DAY]}Z"'
            sink.add(again // DAY, line.replace(old, new))
        else:
            sink.add(received // DAY, line)
        self.counts["duplicate_event_deliveries"] += 1

    def _identify(self, user, moment: int, sink: EventSink, dates, clock) -> None:
        received = moment + 2
        if received >= self.as_of:
            return
        self.seen_users.add(user.user_id)
        self.sequence += 1
        suffix, offset = user.offset
        local = moment + offset
        group = f'"group_id": "{self.company.workspace_id}", ' if self.rng.random() < 0.5 else ""
        if group:
            self.company.group_call_times.append(moment)
        email = messy_email(self.rng, user.email)
        line = (
            f'{{"message_id": "{self.prefix}{self.sequence:012x}", "type": "identify", '
            f'"user_id": "{user.user_id}", {group}"timestamp": '
            f'"{dates[local // DAY]}T{clock[local % DAY]}{suffix}", "received_at": '
            f'"{dates[received // DAY]}T{clock[received % DAY]}Z", '
            f'"context": {{"traits": {{"email": "{email}"}}}}}}'
        )
        sink.add(received // DAY, line)
        self.counts["identify_events"] += 1

    def _bad_line(self, moment: int, sink: EventSink, dates, clock) -> None:
        """One line the pipeline must quarantine; its content is unique to this company."""
        kind, self.bad_kind = self.bad_kind, None
        received = moment + 5
        if received >= self.as_of:
            return
        self.sequence += 1
        user = self.company.users[0].user_id
        group = self.company.workspace_id
        message = f"{self.prefix}{self.sequence:012x}"
        stamp = f"{dates[moment // DAY]}T{clock[moment % DAY]}Z"
        arrived = f"{dates[received // DAY]}T{clock[received % DAY]}Z"
        fields = {
            "message_id": f'"message_id": "{message}"',
            "type": '"type": "track"',
            "timestamp": f'"timestamp": "{stamp}"',
        }
        variant = self.company.index // BAD_EVERY
        if kind == "events_missing_key":
            fields.pop(("message_id", "type", "timestamp")[variant % 3])
        if kind == "events_bad_timestamp":
            fields["timestamp"] = f'"timestamp": "{BAD_TIMESTAMPS[variant % 3]}"'
        group_part = "" if kind == "events_track_without_group" else f'"group_id": "{group}", '
        line = (
            "{" + ", ".join(fields.values()) + f', "event": "login", "user_id": "{user}", '
            f'{group_part}"received_at": "{arrived}", "properties": {{}}}}'
        )
        if kind == "events_invalid_json":
            line = line[: len(line) // 2]
        sink.add(received // DAY, line)
        self.counts[kind] += 1


def write_events(
    root: Path, chunk: int, companies: list[Company], seed: int, calendar: Calendar
) -> Counter:
    """Write chunk `chunk`'s partitions; fills each company's `track_times`; returns counts."""
    counts: Counter = Counter()
    usages = [Usage(c, seed, calendar, counts) for c in companies if c.users]
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
        company.track_times.sort()
    return counts
