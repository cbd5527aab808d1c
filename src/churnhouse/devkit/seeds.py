"""The dbt project's seed lists, read by the dev kit so that the truth uses the same lists."""

from __future__ import annotations

import csv

from churnhouse.config import dbt_project_dir


def seed_values(seed: str, column: str) -> frozenset[str]:
    """The lower-cased values of `column` in `dbt_project/seeds/<seed>.csv`."""
    with open(dbt_project_dir() / "seeds" / f"{seed}.csv", encoding="utf-8", newline="") as file:
        return frozenset(row[column].strip().lower() for row in csv.DictReader(file))
