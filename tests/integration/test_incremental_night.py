"""Nights that run the incremental models publish exactly what a full rebuild publishes.

One simulated company (late events, late group calls, restated invoices and all):
warehouse A is built from empty three days before the bundle's end and then runs
the last two days as ordinary nights (incremental dbt); warehouse B is built from
empty, in full, as of the same end. Every published table has the same rows in
both. Real loads, gates, dbt and publication, on DuckDB and on PostgreSQL (the
incremental SQL runs differently on each: delete+insert on both, different engines).
The ordinary nights leave the unchanged seed tables, staging views and (on DuckDB) time spine
alone, and still run the data tests on the views.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from factories import published_checksums

from churnhouse.config import dbt_project_dir, sources_for_bundle
from churnhouse.contracts import RunWindow
from churnhouse.devkit.bench import run_night
from churnhouse.devkit.simulator import bundle_as_of, simulate
from churnhouse.transform import dbt_work_dir
from churnhouse.warehouse import open_warehouse

pytestmark = pytest.mark.slow

DAY = timedelta(days=1)


def window(name: str, end, days_before_end: int) -> RunWindow:
    night_end = end - days_before_end * DAY
    return RunWindow(name, night_end - DAY, night_end)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_warehouses(request, tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    if request.param == "duckdb":
        return [open_warehouse(str(tmp_path / f"{name}.duckdb")) for name in ("nightly", "full")]
    return [
        open_warehouse(request.getfixturevalue(fixture))
        for fixture in ("postgres_url", "second_postgres_url")
    ]


def test_incremental_nights_publish_the_same_tables_as_a_full_rebuild(two_warehouses, tmp_path):
    nightly, rebuilt = two_warehouses
    bundle: Path = tmp_path / "bundle"
    simulate(out=bundle, customers=120, months=8, start="2024-01", seed=5, workers=1)
    sources = sources_for_bundle(bundle)
    end = bundle_as_of(bundle)

    run_night(nightly, sources, window("first", end, 2), label="from empty", full_refresh=True)
    first = built_nodes(nightly)
    assert {"seed", "seed test", "staging view", "staging test", "time spine model"} <= first
    for name, days_before_end in (("second", 1), ("third", 0)):
        run_night(nightly, sources, window(name, end, days_before_end), label=name)
        # The seed files, staging SQL and time spine did not change: their tables and
        # views are not made again (nor the seeds tested); the raw data behind the views
        # did, and their tests run. PostgreSQL publishes by renaming the audit schema,
        # time spine and all, so there the next night makes the spine again.
        kept = {"seed", "seed test", "staging view"}
        if nightly.kind == "duckdb":
            kept.add("time spine model")
        assert built_nodes(nightly) == first - kept
    run_night(rebuilt, sources, window("rebuild", end, 0), label="rebuild", full_refresh=True)

    incremental, full = published_checksums(nightly), published_checksums(rebuilt)
    # The publication record names its own run; both are as of the same end.
    assert incremental.pop("_publication") != full.pop("_publication")
    assert nightly.published_as_of("analytics") == rebuilt.published_as_of("analytics") == end
    assert len(full) >= 16
    assert incremental == full


def built_nodes(warehouse) -> set[str]:
    """The kinds of node the warehouse's last dbt build ran (dbt's run_results.json): its
    resource types, with the staging views and the tests on them and on seeds apart."""
    results = json.loads((dbt_work_dir(warehouse) / "target" / "run_results.json").read_text())
    kinds = set()
    for result in results["results"]:
        kind, _, name = result["unique_id"].split(".")[:3]
        if "_stg_" in f"_{name}":
            kinds.add(f"staging {'view' if kind == 'model' else kind}")
        elif "metricflow_time_spine" in name:
            kinds.add(f"time spine {kind}")
        elif kind == "test" and SEED_TEST.match(name):
            kinds.add("seed test")
        else:
            kinds.add(kind)
    return kinds


SEEDS = sorted(path.stem for path in (dbt_project_dir() / "seeds").glob("*.csv"))
# A test named after the seed it is on: `<test>_<seed>_<columns>`.
SEED_TEST = re.compile(
    rf"(not_null|unique|unique_combination|accepted_values|relationships)_({'|'.join(SEEDS)})_"
)
