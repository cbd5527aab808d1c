"""The export folder's bulk path (DuckDB) gives what the per-object path gives.

A small simulated company is read both ways, in the shape before API version
2025-03-31 and in an export holding both shapes; then the same export with the odd
lines a real export can hold; then an object the bulk path leaves to Python.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from churnhouse.config import SourceSettings
from churnhouse.contracts import ExtractWindow, RunWindow
from churnhouse.devkit.simulator import bundle_as_of, simulate
from churnhouse.devkit.stripe_shapes import OLD_API_VERSION
from churnhouse.errors import ContractError
from churnhouse.sources.billing import extract
from churnhouse.sources.billing.bulk import extract_export
from churnhouse.sources.billing.extract import extract_per_object

COMPANY = {"customers": 40, "months": 8, "start": "2024-01", "seed": 3}
SHAPES = {
    "old": {"stripe_api_version": OLD_API_VERSION},
    "both": {"stripe_upgrade_at": "2024-05-01"},
}


@pytest.fixture(scope="module", params=sorted(SHAPES))
def bundle(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(f"bulk_{request.param}")
    simulate(out=out, **COMPANY, **SHAPES[request.param])
    return out


def _window(bundle: Path, since: datetime | None = None) -> ExtractWindow:
    end = bundle_as_of(bundle)
    return ExtractWindow(RunWindow("bulk", end - timedelta(days=1), end), since)


def _settings(folder: Path) -> SourceSettings:
    return SourceSettings(crm_url="", billing_url=str(folder), events_uri="", surveys_uri="")


def _both_ways(folder: Path, window: ExtractWindow):
    """(bulk, per-object) extractions of one export folder; the bulk one must not decline."""
    bulk = extract_export(window, folder)
    assert bulk is not None, "the bulk path declined an export it should read"
    return bulk, extract_per_object(window, _settings(folder))


def _assert_same(bulk, per_object) -> None:
    assert [b.table for b in bulk.batches] == [b.table for b in per_object.batches]
    for ours, theirs in zip(bulk.batches, per_object.batches, strict=True):
        ours_rows = ours.rows.drop_columns(["_loaded_at"])
        theirs_rows = theirs.rows.drop_columns(["_loaded_at"])
        assert ours_rows.schema == theirs_rows.schema, ours.table.name
        assert ours_rows.to_pylist() == theirs_rows.to_pylist(), ours.table.name
    assert bulk.bad == per_object.bad


def test_a_simulated_company_gives_the_same_rows_both_ways(bundle):
    bulk, per_object = _both_ways(bundle / "billing", _window(bundle))
    _assert_same(bulk, per_object)
    rows = {batch.table.name: batch.rows.num_rows for batch in bulk.batches}
    assert (
        rows["billing_invoices"] > 100 and rows["billing_invoice_lines"] >= rows["billing_invoices"]
    )


def test_a_look_back_window_gives_the_same_rows_both_ways(bundle):
    window = _window(bundle, since=bundle_as_of(bundle) - timedelta(days=60))
    bulk, per_object = _both_ways(bundle / "billing", window)
    _assert_same(bulk, per_object)
    invoices = [b for b in bulk.batches if b.table.name == "billing_invoices"][0]
    assert 0 < invoices.rows.num_rows


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _with_odd_lines(folder: Path) -> None:
    """What a real export may hold, beside the simulator's clean lines."""
    invoices = _lines(folder / "invoices.jsonl")
    first, second = json.loads(invoices[0]), json.loads(invoices[1])
    second["customer_name"] = "Zoë\u0007 Ünal"  # json.dumps escapes the bell as \u0007
    second["tax_rate"] = 0.19
    short = dict(first, id="in_cut_short")
    short["lines"] = dict(first["lines"], has_more=True)
    odd = [
        "not json at all",
        "[1, 2]",
        '{"object": "invoice"}',
        json.dumps(first, separators=(",", ":")),  # a later copy, spelt compactly
        json.dumps(second, ensure_ascii=True),
        json.dumps(short, ensure_ascii=False),
        "",
    ]
    text = "\ufeff" + "\r\n".join(invoices[:5] + odd + invoices[5:]) + "\n"
    (folder / "invoices.jsonl").write_bytes(text.encode("utf-8") + b'{"id": "in_\xff"}\n')
    customers = _lines(folder / "customers.jsonl")
    customer = json.loads(customers[0])
    customer["name"] = 'Acme, "Inc": \\ / \u2028'
    customers.insert(1, json.dumps(customer, ensure_ascii=False))
    (folder / "customers.jsonl").write_text("\n".join(customers) + "\n", encoding="utf-8")


def test_odd_lines_are_read_or_quarantined_as_the_per_object_path_does(bundle, tmp_path):
    folder = tmp_path / "billing"
    shutil.copytree(bundle / "billing", folder)
    _with_odd_lines(folder)
    bulk, per_object = _both_ways(folder, _window(bundle))
    _assert_same(bulk, per_object)
    reasons = [record.reason for record in bulk.bad]
    assert any(reason.startswith("invalid JSON") for reason in reasons)
    assert any(reason.startswith("not UTF-8") for reason in reasons)
    assert any("has_more" in reason for reason in reasons)
    assert len(reasons) == 5


def test_an_object_outside_the_checks_takes_the_per_object_path(bundle, tmp_path):
    folder = tmp_path / "billing"
    shutil.copytree(bundle / "billing", folder)
    charges = _lines(folder / "charges.jsonl")
    charge = json.loads(charges[0])
    del charge["amount"]
    charges[0] = json.dumps(charge, ensure_ascii=False)
    (folder / "charges.jsonl").write_text("\n".join(charges) + "\n", encoding="utf-8")
    assert extract_export(_window(bundle), folder) is None
    with pytest.raises(
        ContractError, match=f"billing charge {charge['id']}: missing field 'amount'"
    ):
        extract(_window(bundle), _settings(folder))
