"""The hand-written company built by dbt, once per module on DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from company import AS_OF, build_company


@pytest.fixture(scope="module")
def built_duckdb(tmp_path_factory) -> str:
    """A DuckDB warehouse holding the company's raw layer and the marts (schema analytics)."""
    from churnhouse.transform import build

    url = str(Path(tmp_path_factory.mktemp("company")) / "warehouse.duckdb")
    build_company().write(url)
    build(url, AS_OF, marts_schema="analytics", unit_tests=True)
    return url


@pytest.fixture(scope="session")
def published_company(tmp_path_factory) -> str:
    """A DuckDB warehouse with the company built into the audit schema and published, as a
    night does it; returns the working file's path (the published file is beside it)."""
    from churnhouse.publish import publish
    from churnhouse.transform import build
    from churnhouse.warehouse import open_warehouse

    url = str(Path(tmp_path_factory.mktemp("published")) / "warehouse.duckdb")
    build_company().write(url)
    build(url, AS_OF)
    publish(open_warehouse(url), "company-night", AS_OF)
    return url
