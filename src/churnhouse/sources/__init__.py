"""The sources, one sub-package each, all of one shape; this module is their registry.

A source package declares:

- `RAW_TABLES`: the raw tables it writes (`churnhouse.contracts.RawTable`);
- `LOOKBACK_DAYS`: how far before the previous run's end the next run re-reads
  (late data, restated objects); `CHURN_<SOURCE>_LOOKBACK_DAYS` overrides it;
- `extract(window, settings) -> Extracted`: the batches and bad records of one
  `ExtractWindow`, read with the `SourceSettings`.

It knows its source system and the contracts, never the warehouse, the loader
or the gates. A new source is one new folder here: the DAG, `ingest`, the gates
and the demo all read this registry.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from datetime import timedelta
from types import ModuleType

from churnhouse.contracts import RawTable


def source_names() -> tuple[str, ...]:
    """Every source package, by name (cheap: lists this folder, imports nothing)."""
    return tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg))


def source(name: str) -> ModuleType:
    """The source package `name`."""
    names = source_names()
    if name not in names:
        raise ValueError(f"unknown source {name!r}; expected one of {', '.join(names)}")
    return importlib.import_module(f"{__name__}.{name}")


def lookback(name: str) -> timedelta:
    """The source's look-back; `CHURN_<SOURCE>_LOOKBACK_DAYS` overrides its default."""
    default = source(name).LOOKBACK_DAYS
    return timedelta(days=int(os.environ.get(f"CHURN_{name.upper()}_LOOKBACK_DAYS", default)))


def raw_tables(name: str) -> tuple[RawTable, ...]:
    """The raw tables `name` writes, children (invoice lines) included."""
    tables = source(name).RAW_TABLES
    return tuple(t for table in tables for t in (table, *table.children))


def all_raw_tables() -> dict[str, tuple[RawTable, ...]]:
    """Every source's raw tables, by source name."""
    return {name: raw_tables(name) for name in source_names()}
