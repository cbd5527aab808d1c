"""The suite registry: the modules of `expectations/`, imported once per process."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from churnhouse.config import expectations_dir
from churnhouse.contracts import RAW_SCHEMA
from churnhouse.errors import PermanentError
from churnhouse.sources import all_raw_tables


@dataclass(frozen=True)
class Suite:
    """One guarded table: where it sits, what guards it, and which source fills it (raw)."""

    name: str
    table: str
    boundary: str  # raw | marts
    source: str | None
    expectations: Callable[[Any, dict], list]
    query: str | None = None
    volume_column: str | None = None


def suites(boundary: str, sources: tuple[str, ...] | None = None) -> list[Suite]:
    """The suites of a boundary (for raw, of the given sources), in file-name order."""
    chosen = [suite for suite in load_suites(expectations_dir()) if suite.boundary == boundary]
    if sources is not None:
        chosen = [suite for suite in chosen if suite.source in sources]
    return chosen


@cache
def load_suites(folder: Path) -> tuple[Suite, ...]:
    """Every suite module of `folder`, imported once."""
    owners = {
        table.qualified_name: name for name, tables in all_raw_tables().items() for table in tables
    }
    return tuple(_suite(path, owners) for path in sorted(folder.glob("*.py")))


def _suite(path: Path, owners: dict[str, str]) -> Suite:
    spec = importlib.util.spec_from_file_location(f"churn_expectations.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = None
    if module.BOUNDARY == "raw":
        source = owners.get(module.TABLE)
        if source is None:
            raise PermanentError(
                f"{path}: TABLE {module.TABLE!r} is not a raw table of any source "
                f"(schema {RAW_SCHEMA})"
            )
    return Suite(
        name=path.stem,
        table=module.TABLE,
        boundary=module.BOUNDARY,
        source=source,
        expectations=module.expectations,
        query=getattr(module, "QUERY", None),
        volume_column=getattr(module, "VOLUME_COLUMN", None),
    )
