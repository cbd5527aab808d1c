"""The simulated company's clock: instants are Unix seconds (UTC) as plain ints.

Ints keep the hot loops cheap and make every comparison exact; text forms are
built only when a record is written.
"""

from __future__ import annotations

import calendar as _calendar
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, cached_property

DAY = 86_400
HOUR = 3_600
MINUTE = 60


def month_number(label: str) -> int:
    """`YYYY-MM` → months since year 0 (so consecutive months differ by 1)."""
    year, month = (int(part) for part in label.split("-"))
    if not 1 <= month <= 12:
        raise ValueError(f"start {label!r} is not YYYY-MM")
    return year * 12 + month - 1


def month_label(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def month_start(number: int) -> int:
    return _calendar.timegm((number // 12, number % 12 + 1, 1, 0, 0, 0))


@cache
def months_after(anchor: int, months: int) -> int:
    """The instant `months` calendar months after `anchor`: same day (clamped) and time."""
    moment = datetime.fromtimestamp(anchor, UTC)
    number = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(number, 12)
    day = min(moment.day, _calendar.monthrange(year, month + 1)[1])
    seconds = anchor % DAY
    return _calendar.timegm((year, month + 1, day, 0, 0, 0)) + seconds


def utc_datetime(instant: int) -> datetime:
    """Naive UTC datetime (what the CRM stores)."""
    return datetime.fromtimestamp(instant, UTC).replace(tzinfo=None)


def truth_text(instant: int | None) -> str:
    """`YYYY-MM-DD HH:MM:SS` (UTC) as the truth files write instants; '' for None."""
    return "" if instant is None else utc_datetime(instant).isoformat(sep=" ")


@cache
def day_text(day_number: int) -> str:
    return date.fromordinal(day_number + 719_163).isoformat()  # 719_163 = 1970-01-01


@cache
def clock_texts() -> tuple[str, ...]:
    return tuple(f"{s // HOUR:02d}:{s % HOUR // MINUTE:02d}:{s % MINUTE:02d}" for s in range(DAY))


def iso(instant: int, offset_seconds: int = 0, suffix: str = "Z") -> str:
    """ISO-8601 of `instant` shown at a UTC offset (`suffix` names it: Z, +08:00, ...)."""
    local = instant + offset_seconds
    return f"{day_text(local // DAY)}T{clock_texts()[local % DAY]}{suffix}"


@dataclass(frozen=True)
class Calendar:
    """The simulated span: `months` calendar months from `start`; `as_of` closes the last."""

    first_month: int  # month number of the first month
    months: int

    @classmethod
    def from_start(cls, start: str, months: int) -> Calendar:
        if months < 1:
            raise ValueError("months must be at least 1")
        return cls(month_number(start), months)

    @property
    def start(self) -> int:
        return month_start(self.first_month)

    @property
    def as_of(self) -> int:
        return month_start(self.first_month + self.months)

    @cached_property
    def month_starts(self) -> tuple[int, ...]:
        """Starts of the simulated months and, last, as_of."""
        return tuple(month_start(self.first_month + n) for n in range(self.months + 1))

    def month_of(self, instant: int) -> int:
        """Month number of the month containing `instant` (any instant, not only inside)."""
        starts = self.month_starts
        if starts[0] <= instant < starts[-1]:
            return self.first_month + bisect_right(starts, instant) - 1
        moment = datetime.fromtimestamp(instant, UTC)
        return moment.year * 12 + moment.month - 1
