"""Monthly exchange rates to USD, as finance would hand them over (`fx_rates.csv`)."""

from __future__ import annotations

import random
from pathlib import Path

from churnhouse.devkit.simulator.clock import Calendar, month_label

START_RATES = {"eur": 1.08, "cny": 0.139, "jpy": 0.0067}
MONTHLY_MOVE = {"eur": 0.012, "cny": 0.006, "jpy": 0.01}
DIGITS = {"jpy": 8}  # decimals written; 6 unless named


def fx_rates(seed: int, calendar: Calendar) -> dict[tuple[str, int], str]:
    """(currency, month number) → rate text, for every simulated month and as_of's month."""
    rng = random.Random(f"{seed}:fx")
    level = dict(START_RATES)
    rates: dict[tuple[str, int], str] = {}
    for month in range(calendar.first_month, calendar.first_month + calendar.months + 1):
        rates[("usd", month)] = "1"
        for currency in sorted(level):
            level[currency] *= 1 + rng.uniform(-MONTHLY_MOVE[currency], MONTHLY_MOVE[currency])
            rates[(currency, month)] = f"{level[currency]:.{DIGITS.get(currency, 6)}f}"
    return rates


def write_fx_rates(path: Path, rates: dict[tuple[str, int], str]) -> int:
    lines = ["currency,month,rate_to_usd"]
    lines += [f"{cur},{month_label(month)},{rate}" for (cur, month), rate in sorted(rates.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1
