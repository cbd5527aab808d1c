"""Write-audit-publish: the night's marts are built in the audit schema, checked, then
published all together, atomically. Readers see all of yesterday or all of today.

How the swap is done is the warehouse's business (`Warehouse.publish_audit`):
PostgreSQL renames schemas in one transaction, DuckDB replaces a separate
published file by an atomic rename.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime

from churnhouse.contracts import AUDIT_SCHEMA, PUBLISHED_SCHEMA
from churnhouse.warehouse import Warehouse


@dataclass(frozen=True)
class Publication:
    run_id: str
    tables: tuple[str, ...]
    seconds: float
    kept_newer: datetime | None = None  # set when a newer publication was left in place

    def describe(self) -> str:
        if self.kept_newer is not None:
            return (
                f"not published: {PUBLISHED_SCHEMA} holds as_of {self.kept_newer:%Y-%m-%d %H:%M}, "
                f"newer than run {self.run_id}; rerun with --force to replace it"
            )
        return f"published {len(self.tables)} tables for run {self.run_id} in {self.seconds:.1f}s"


def forced() -> bool:
    """`CHURN_PUBLISH_FORCE` (`--force`): replace even a newer publication."""
    return os.environ.get("CHURN_PUBLISH_FORCE", "").lower() in ("1", "true", "yes")


def publish(
    warehouse: Warehouse, run_id: str, as_of: datetime, *, force: bool | None = None
) -> Publication:
    """Publish every table of the audit schema at once; raise if there is nothing to publish.

    A publication whose as_of is newer than this run's stays in place (an old date run
    again must not roll the dashboards back) unless `force` (default: `forced()`).
    """
    started = time.monotonic()
    force = forced() if force is None else force
    current = warehouse.published_as_of(PUBLISHED_SCHEMA)
    if current is not None and current > as_of and not force:
        publication = Publication(run_id, (), time.monotonic() - started, kept_newer=current)
    else:
        tables = warehouse.publish_audit(AUDIT_SCHEMA, PUBLISHED_SCHEMA, run_id, as_of)
        publication = Publication(run_id, tuple(tables), time.monotonic() - started)
    print(publication.describe(), flush=True)
    return publication
