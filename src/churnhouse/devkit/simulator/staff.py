"""The simulated company's own staff: the CRM `users` who own accounts and log activities."""

from __future__ import annotations

import random

from churnhouse.devkit.simulator.clock import DAY, utc_datetime

TEAMS = (("sales", 10), ("customer_success", 8), ("support", 6))
_NAMES = (
    "Alex Morgan",
    "Sam Rivera",
    "Jordan Lee",
    "Taylor Brooks",
    "Casey Nguyen",
    "Robin Weber",
    "Kim Sato",
    "Chris Novak",
    "Pat Okafor",
    "Dana Rossi",
    "Lee Wang",
    "Jamie Silva",
    "Morgan Dubois",
    "Riley Jensen",
    "Avery Patel",
    "Quinn Zhang",
    "Drew Garcia",
    "Sky Chen",
    "Jesse Kim",
    "Noa Tanaka",
    "Eli Mueller",
    "Ari Liu",
    "Remy Smith",
    "Kai Fischer",
)


def _team_ids() -> dict[str, tuple[str, ...]]:
    ids, number = {}, 0
    for team, size in TEAMS:
        ids[team] = tuple(f"usr_{number + n + 1:03d}" for n in range(size))
        number += size
    return ids


TEAM_IDS = _team_ids()


def pick_staff(rng: random.Random, team: str) -> str:
    return rng.choice(TEAM_IDS[team])


def staff_rows(start: int) -> list[dict]:
    """The `users` rows; they were set up long before the simulated span."""
    rows = []
    for team, ids in TEAM_IDS.items():
        for user_id in ids:
            name = _NAMES[int(user_id[4:]) - 1]
            rows.append(
                {
                    "user_id": user_id,
                    "full_name": name,
                    "email": f"{name.lower().replace(' ', '.')}@churnhouse-demo.example",
                    "team": team,
                    "updated_at": utc_datetime(start - 400 * DAY),
                }
            )
    return rows
