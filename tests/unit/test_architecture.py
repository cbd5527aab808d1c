"""The package's shape: DAG → tasks → (ingest, gates, transform, publish) → (sources,
warehouse) → contracts, with the dev kit beside it, never imported by the pipeline.

Imports are read from the source text (every `import` / `from ... import`, also
those inside functions), so a lazy import cannot slip past.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from churnhouse.contracts import PUBLISHED_MARTS
from churnhouse.sources import source, source_names

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "churnhouse"
DBT_MARTS = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "marts"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in paths
        for name in sorted(imported_modules(path))
        if name.startswith(forbidden)
    ]


def pipeline_modules() -> list[Path]:
    """Everything of the package but the dev kit and the CLI (which dispatches to both)."""
    return [
        path
        for path in modules_under(PACKAGE)
        if "devkit" not in path.relative_to(PACKAGE).parts and path.name != "cli.py"
    ]


def test_the_pipeline_never_imports_the_dev_kit():
    assert offending(pipeline_modules(), ("churnhouse.devkit",)) == []


def test_sources_know_neither_the_loader_nor_the_gates_nor_the_warehouse():
    forbidden = (
        "churnhouse.load",
        "churnhouse.gates",
        "churnhouse.warehouse",
        "churnhouse.ingest",
        "churnhouse.tasks",
        "churnhouse.publish",
        "churnhouse.transform",
    )
    assert offending(modules_under(PACKAGE / "sources"), forbidden) == []


def test_contracts_sit_below_everything():
    imports = {n for n in imported_modules(PACKAGE / "contracts.py") if n.startswith("churnhouse")}
    assert imports == set()


def test_only_the_warehouse_asks_which_engine_it_is():
    outside = [p for p in pipeline_modules() if "warehouse" not in p.relative_to(PACKAGE).parts]
    branches = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in outside
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(
            r"\.kind\s*[!=]=|[!=]=\s*\S*\.kind\b|isinstance\(\w+, \w*(DuckDB|Postgres)", line
        )
    ]
    assert branches == []


@pytest.mark.parametrize("name", source_names())
def test_every_source_has_the_one_shape(name):
    package = source(name)
    assert callable(package.extract)
    assert package.RAW_TABLES, f"source {name} declares no raw tables"
    assert isinstance(package.LOOKBACK_DAYS, int)


def test_no_two_sources_write_the_same_raw_table():
    from churnhouse.sources import all_raw_tables

    names = [table.name for tables in all_raw_tables().values() for table in tables]
    assert len(names) == len(set(names))


def test_the_dags_published_marts_are_exactly_the_dbt_marts():
    built = {path.stem for path in DBT_MARTS.glob("*.sql")}
    assert set(PUBLISHED_MARTS) == built
