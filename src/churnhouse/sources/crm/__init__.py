"""CRM tables over SQLAlchemy (SQLite, PostgreSQL, MariaDB, ...).

Incremental on `updated_at` with an overlap window; the raw layer keeps every
version it has seen, keyed by (primary key, updated_at). Soft deletes arrive as
versions with `is_deleted = true`.
"""

from churnhouse.sources.crm.extract import CRM_TABLES, extract

__all__ = ["CRM_TABLES", "extract"]
