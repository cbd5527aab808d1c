"""The one place that opens the warehouse: a DuckDB file or a PostgreSQL database.

`open_warehouse(url)` returns the class of the engine the URL names. Each class
offers the few operations the rest of the package needs, so no other module
asks which engine it is talking to:

- `transaction()`: one unit of work with portable SQL and bulk staging
  (DuckDB: a registered Arrow view; PostgreSQL: `COPY ... FROM STDIN`);
- `read_frame(sql, params)`: a query's rows as a pandas DataFrame;
- `exclusive()`: hold the database against other writers while dbt runs;
- `dbt_settings()` / `release_after_dbt()`: what `profiles.yml` reads;
- `publish_audit(...)`: swap the audited marts into the published place;
- `read_published(sql)`: a read-only query on the published tables;
- `published_location()`: where those tables are, for a message (no credentials);
- `validation_sql_url`: a SQLAlchemy URL Great Expectations can validate in SQL,
  or None when GE must validate DataFrames (DuckDB).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from churnhouse.contracts import BadRecord, Batch, RawTable

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class UnsafeIdentifierError(ValueError):
    """A schema/table/column name from configuration that is not a plain identifier."""


def checked_identifier(name: str) -> str:
    """Return `name` when it is a plain SQL identifier, else refuse it."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise UnsafeIdentifierError(
            f"refusing identifier {name!r}: only letters, digits and _ (not first), at most 63"
        )
    return name


def qualified(schema: str, table: str) -> str:
    return f"{checked_identifier(schema)}.{checked_identifier(table)}"


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://"))


class Transaction(ABC):
    """One open transaction on the warehouse."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    @abstractmethod
    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]: ...

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    def stage_arrow(self, name: str, column_ddl: str, data: pa.Table) -> None:
        """Create temp table `name` (`column_ddl`) holding `data`, by the bulk path."""

    @abstractmethod
    def stage_batch(self, name: str, batch: Batch) -> list[BadRecord]:
        """Stage one extractor batch as temp table `name`; return the bad records it found."""

    @abstractmethod
    def refresh_statistics(self, table: str) -> None:
        """Bring the planner's statistics of `table` up to date after a bulk write."""

    def adopt_staged(self, table: RawTable, staged: str) -> bool:
        """Make the table behind staged batch `staged` raw table `table` itself, if the
        warehouse can (`table` empty, the batch parsed into a table of its own): True when
        done, and the merge has nothing left to do."""
        return False


class Warehouse(ABC):
    """A configured warehouse; `transaction()` opens it for one unit of work."""

    kind: str
    url: str
    validation_sql_url: str | None = None

    def __repr__(self) -> str:  # never print credentials
        return f"{type(self).__name__}()"

    @abstractmethod
    def transaction(
        self, parse_ahead: Sequence[Callable[[Any], None]] = ()
    ) -> AbstractContextManager[Transaction]:
        """Open, BEGIN, yield, COMMIT (ROLLBACK on any error), close.

        `parse_ahead`: what bulk sources do in a DuckDB warehouse's own connection
        before BEGIN (`Batch.parse_ahead`); a warehouse that parses elsewhere ignores it.
        """

    @abstractmethod
    def read_frame(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame: ...

    def held(self) -> AbstractContextManager[None]:
        """Keep one connection open for the short reads and transactions inside (a gate's
        dozens): a warehouse whose connections are costly to open reuses it."""
        return nullcontext()

    @abstractmethod
    def exclusive(self) -> AbstractContextManager[None]:
        """Keep other writers out while a tool that opens the database itself (dbt) runs."""

    @abstractmethod
    def dbt_settings(self) -> dict[str, str]:
        """The environment `dbt_project/profiles.yml` reads to reach this warehouse."""

    @abstractmethod
    def release_after_dbt(self) -> None:
        """Let go of anything dbt keeps open after a run."""

    @abstractmethod
    def publish_audit(
        self, audit_schema: str, published_schema: str, run_id: str, as_of: datetime
    ) -> list[str]:
        """Publish every table of `audit_schema` at once, with a `_publication` row.

        Returns the names of the published marts; raises when there is nothing to publish.
        """

    @abstractmethod
    def read_published(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Column names and rows of a read-only query on the published tables."""

    @abstractmethod
    def published_as_of(self, published_schema: str) -> datetime | None:
        """The as_of of what is published now (the writer's view), or None when nothing is."""

    @abstractmethod
    def published_location(self) -> str:
        """Where readers find the published tables, for people (no credentials)."""

    @abstractmethod
    def published_for_dbt(self) -> AbstractContextManager[Warehouse]:
        """A warehouse on which dbt sees the published tables (`dbt docs`, MetricFlow),
        named as dbt names the working one; it must not be written to."""


PUBLICATION_TABLE = "_publication"


_PUBLICATION_COMMENTS = {
    None: "What is published: the run that built these tables and the moment they report to.",
    "run_id": "Airflow run id of the night that built and published these tables.",
    "as_of": "End of that run's data interval (UTC): the tables report up to here.",
    "published_at": "When the tables were published (UTC).",
}


def create_publication_table(execute, schema: str, row: list) -> None:
    """Create `<schema>._publication` holding `row` (run_id, as_of, published_at): which run
    and as_of the schema's tables hold, with NOT NULL columns and comments."""
    table = f"{schema}.{PUBLICATION_TABLE}"
    execute(
        f"CREATE TABLE {table} (run_id TEXT NOT NULL, as_of TIMESTAMP NOT NULL, "
        "published_at TIMESTAMP NOT NULL)"
    )
    execute(f"INSERT INTO {table} VALUES (?, ?, ?)", row)
    for column, comment in _PUBLICATION_COMMENTS.items():
        execute(comment_sql(table, column, comment))


def comment_sql(table: str, column: str | None, comment: str) -> str:
    """COMMENT ON TABLE/COLUMN (no bind parameters there: the text is quoted here)."""
    text = "'" + comment.replace("'", "''") + "'"
    if column is None:
        return f"COMMENT ON TABLE {table} IS {text}"
    return f'COMMENT ON COLUMN {table}."{column}" IS {text}'


class NothingToPublish(RuntimeError):
    """The audit schema holds no tables (dbt did not build into it)."""


def open_warehouse(url: str | None = None) -> Warehouse:
    """The warehouse named by `url`, else by the `CHURN_WAREHOUSE` setting."""
    from churnhouse.config import warehouse_url

    url = url or warehouse_url()
    if is_postgres_url(url):
        from churnhouse.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url)
    from churnhouse.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(url)


__all__ = [
    "Transaction",
    "UnsafeIdentifierError",
    "Warehouse",
    "checked_identifier",
    "is_postgres_url",
    "open_warehouse",
    "qualified",
]
