"""A night whose billing lost its recurring information is stopped by the marts gate,
and the published tables keep their checksums (issue 9).

The loss the raw gate cannot see: every price comes back as a one-time price, so no
line claims what it cannot show and every load, dbt test and raw check passes — and
the night would publish zero MRR. The collapse check (tonight's closed months against
the last publication) stops it. Real simulated company, real loads, dbt and gates, on
DuckDB and on PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from factories import published_checksums

from churnhouse.config import sources_for_bundle
from churnhouse.contracts import RunWindow
from churnhouse.devkit.simulator import bundle_as_of, simulate
from churnhouse.gates import GateFailed, run_marts_gate, run_raw_gate
from churnhouse.ingest import ingest
from churnhouse.publish import publish
from churnhouse.sources import source_names
from churnhouse.transform import build

pytestmark = pytest.mark.slow

OLDER_SHAPE = "2025-02-24.acacia"  # whole price objects on the lines: easiest to strip


def night(warehouse, bundle: Path, run: RunWindow) -> None:
    settings = sources_for_bundle(bundle)
    for name in source_names():
        ingest(name, run, settings, warehouse)
    # Only billing's raw gate: the loss is in billing, and the other sources' checks (the
    # events volume against the days before, ...) are tested in their own files.
    run_raw_gate(warehouse, "billing", run)
    build(warehouse.url, run.interval_end)
    run_marts_gate(warehouse, run)
    publish(warehouse, run.run_id, run.interval_end)


def lose_recurring_prices(billing: Path) -> int:
    """Every line's price becomes one-time (as a broken export or mapping would give)."""
    changed = 0
    for name in ("invoices.jsonl", "invoice_lines.jsonl"):
        path = billing / name
        if not path.exists():
            continue
        objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for obj in objects:
            for line in obj["lines"]["data"] if name == "invoices.jsonl" else [obj]:
                line.pop("type", None)
                line.pop("subscription_item", None)
                line["price"] = {**line["price"], "type": "one_time", "recurring": None}
                changed += 1
        path.write_text("".join(json.dumps(obj) + "\n" for obj in objects))
    return changed


def test_a_night_that_lost_its_recurring_prices_never_reaches_the_published_tables(
    warehouse, tmp_path
):
    bundle = tmp_path / "bundle"
    simulate(
        out=bundle,
        customers=40,
        months=8,
        start="2024-01",
        seed=5,
        workers=1,
        stripe_api_version=OLDER_SHAPE,
    )
    as_of = bundle_as_of(bundle)
    good = RunWindow("night-good", as_of - timedelta(days=1), as_of)
    night(warehouse, bundle, good)
    before = published_checksums(warehouse)
    assert before["churn_monthly"] and len(before) > 10

    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    assert lose_recurring_prices(broken / "billing") > 100
    with warehouse.transaction() as tx:  # the raw layer re-read from scratch
        tx.execute("DROP SCHEMA raw CASCADE")
    with pytest.raises(GateFailed) as failure:
        night(warehouse, broken, RunWindow("night-broken", good.interval_start, as_of))
    message = str(failure.value)
    assert "marts_against_published" not in message  # the failure names figures, not suites
    assert "total MRR at the close of" in message and ", tonight 0.00 (100% moved" in message
    assert "active customers at the close of" in message
    assert published_checksums(warehouse) == before
