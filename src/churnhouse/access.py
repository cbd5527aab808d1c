"""Read-only access for BI tools on PostgreSQL: a role that can read the published schema only.

The role gets CONNECT on the database and SELECT on the published schema's
tables, nothing else: no raw, audit or snapshot data, no writes, no DDL.
Publishing re-grants it on the freshly swapped schema (see `publish.py`).
Its password, when it logs in with one, comes from `CHURN_BI_PASSWORD`.
"""

from __future__ import annotations

import os

from churnhouse.publish import PUBLISHED_SCHEMA, bi_role
from churnhouse.warehouse import Warehouse, checked_identifier


def ensure_bi_role(warehouse: Warehouse, role: str | None = None) -> str:
    """Create (or fix up) the read-only BI role; returns its name."""
    if warehouse.kind != "postgres":
        raise TypeError("the BI role is for PostgreSQL; DuckDB readers open the published file")
    role = checked_identifier(role or bi_role())
    password = os.environ.get("CHURN_BI_PASSWORD")
    with warehouse.transaction() as tx:
        exists = tx.fetchall("SELECT 1 FROM pg_roles WHERE rolname = ?", [role])
        if not exists:
            tx.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        if password:
            tx.execute(f"ALTER ROLE {role} PASSWORD ?", [password])
        database = checked_identifier(tx.fetchone("SELECT current_database()")[0])
        tx.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        tx.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
        tx.execute(f"CREATE SCHEMA IF NOT EXISTS {PUBLISHED_SCHEMA}")
        tx.execute(f"GRANT USAGE ON SCHEMA {PUBLISHED_SCHEMA} TO {role}")
        tx.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {PUBLISHED_SCHEMA} TO {role}")
    return role
