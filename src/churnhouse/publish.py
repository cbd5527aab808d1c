"""Write-audit-publish: the night's marts are built in the audit schema, checked, then
published all together, atomically. Readers see all of yesterday or all of today.

How the swap is done is the warehouse's business (`Warehouse.publish_audit`):
PostgreSQL renames schemas in one transaction, DuckDB replaces a separate
published file by an atomic rename.
"""

from __future__ import annotations

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

    def describe(self) -> str:
        return f"published {len(self.tables)} tables for run {self.run_id} in {self.seconds:.1f}s"


def publish(warehouse: Warehouse, run_id: str, as_of: datetime) -> Publication:
    """Publish every table of the audit schema at once; raise if there is nothing to publish."""
    started = time.monotonic()
    tables = warehouse.publish_audit(AUDIT_SCHEMA, PUBLISHED_SCHEMA, run_id, as_of)
    publication = Publication(run_id, tuple(tables), time.monotonic() - started)
    print(publication.describe(), flush=True)
    return publication
