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
    build(url, AS_OF, marts_schema="analytics")
    return url
