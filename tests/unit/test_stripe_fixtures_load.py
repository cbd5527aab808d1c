"""Stripe's published object fixtures (tests/fixtures/stripe) load through the real billing
extractor in both shapes, and the simulator's way of writing a shape gives the same raw
rows as Stripe's own objects.

The simulator writes one shape and converts with `churnhouse.devkit.stripe_shapes`; each
shape's fixtures are converted to the other shape that way, and both exports must land
the same raw rows (the whole JSON as received, `raw`, aside).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from stripe_fixtures import SHAPES, fixture_objects, write_fixture_export

from churnhouse.config import SourceSettings
from churnhouse.contracts import ExtractWindow, RunWindow
from churnhouse.devkit.stripe_shapes import in_shape
from churnhouse.sources.billing import extract

RUN = RunWindow("fixtures", datetime(2000, 1, 1), datetime(2030, 1, 1))


def _rows(folder: Path) -> tuple[dict[str, list[dict]], list]:
    settings = SourceSettings(crm_url="", billing_url=str(folder), events_uri="", surveys_uri="")
    extracted = extract(ExtractWindow(RUN, None), settings)
    tables = {
        batch.table.name: sorted(
            (
                {k: v for k, v in row.items() if k not in ("raw", "_loaded_at", "_pick")}
                for row in batch.rows.to_pylist()
            ),
            key=repr,
        )
        for batch in extracted.batches
    }
    return tables, extracted.bad


def _write(folder: Path, objects: dict[str, list[dict]]) -> Path:
    import json

    folder.mkdir(parents=True)
    for name, items in objects.items():
        text = "".join(json.dumps(obj) + "\n" for obj in items)
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("shape", SHAPES)
def test_stripes_own_objects_load_whole(tmp_path, shape):
    write_fixture_export(tmp_path, shape)
    tables, bad = _rows(tmp_path)
    assert bad == []
    counts = {name: len(rows) for name, rows in tables.items()}
    assert counts == {
        "billing_prices": 1,
        "billing_customers": 2,  # the deleted one too
        "billing_subscriptions": 1,
        "billing_invoices": 1,
        "billing_invoice_lines": 2,  # the embedded line and the rest of the cut-short list
        "billing_charges": 1,
    }
    (invoice,) = tables["billing_invoices"]
    assert invoice["subscription"] == tables["billing_subscriptions"][0]["id"]
    for line in tables["billing_invoice_lines"]:
        assert line["line_problem"] is None, line
        assert line["price_id"] == tables["billing_prices"][0]["id"]
        assert line["recurring_interval"] == "month"


@pytest.mark.parametrize("shape", SHAPES)
def test_the_simulators_conversion_of_stripes_objects_lands_the_same_rows(tmp_path, shape):
    objects = fixture_objects(shape)
    prices = {price["id"]: price for price in objects["prices"]}
    to_new = shape == SHAPES[0]
    converted = {
        name: [in_shape(obj, to_new, prices) for obj in items] for name, items in objects.items()
    }
    assert converted != objects, "the conversion must change something"
    original, original_bad = _rows(_write(tmp_path / "original", objects))
    other, other_bad = _rows(_write(tmp_path / "converted", converted))
    assert original_bad == other_bad == []
    assert original == other
