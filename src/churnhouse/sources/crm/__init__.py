"""CRM tables over SQLAlchemy (SQLite, PostgreSQL, MariaDB, ...).

Incremental on `updated_at` with an overlap window; the raw layer keeps every
version it has seen, keyed by (primary key, updated_at). Soft deletes arrive as
versions with `is_deleted = true`.
"""

from churnhouse.sources.crm.extract import CRM_TABLES, extract

RAW_TABLES = tuple(CRM_TABLES.values())
LOOKBACK_DAYS = 1  # the overlap on `updated_at`

__all__ = ["CRM_TABLES", "LOOKBACK_DAYS", "RAW_TABLES", "extract"]
