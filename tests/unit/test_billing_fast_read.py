"""The export folder's fast readings give what plain `json` gives.

Two fast readings: the bulk one (DuckDB parses and shreds every line in SQL, what an
export night runs) and the object-by-object one (msgspec decodes the lines and the raw
column reuses a line already in json.dumps' form). Plain reading is `json.loads` for
every line and `json.dumps` for every raw value. They are run on small simulated
companies (the shape before API version 2025-03-31, and an export holding both
shapes) with the odd lines a real export can hold, and on single lines chosen to
differ between the decoders.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from churnhouse.config import SourceSettings
from churnhouse.contracts import ExtractWindow, RunWindow
from churnhouse.devkit.simulator import bundle_as_of, simulate
from churnhouse.devkit.stripe_shapes import OLD_API_VERSION
from churnhouse.sources.billing import export
from churnhouse.sources.billing.bulk import REFUSED_BY_DUCKDB
from churnhouse.sources.billing.extract import extract, extract_export_in_bulk, extract_objects

COMPANY = {"customers": 40, "months": 8, "start": "2024-01", "seed": 3}
SHAPES = {
    "old": {"stripe_api_version": OLD_API_VERSION},
    "both": {"stripe_upgrade_at": "2024-05-01"},
}

LINES = [
    b'{"id": "a", "n": 1}',
    b'{"id":"a","n":1}',
    b'{ "id": "a" , "n": [ 1, 2 ] }',
    b'{"id": "a", "x": 1, "x": 2}',
    b'{"id": "a", "n": 123456789012345678901234567890}',
    b'{"id": "a", "n": -0}',
    b'{"id": "a", "n": -0.0, "m": 1.50, "k": 1e400, "e": 2E-3}',
    b'{"id": "a", "n": NaN, "m": -Infinity}',
    b'{"id": "a", "s": "caf\\u00e9 \\/ \\u0007 \\ud83d\\ude00"}',
    b'{"id": "a", "s": "\\ud800"}',
    '{"id": "a", "s": "Zoë \u2028 \x7f \\" \\\\ \\n"}'.encode(),
    b'{"id": "a", "s": "a\x01b"}',
    b'{"id": "\xff"}',
    b'\xef\xbb\xbf{"id": "a"}',
    b'{"id": "a"',
    b"[1, 2]",
    b'"text"',
    b'{"object": "invoice"}',
    b'{"id": ""}',
    b'{"id": 5}',
    b'{"id": "a"}\r\r',
    b'{"id": "a", "lines": {"data": [{"id": "il_1", "amount": 5}], "has_more": false}}',
]


def _same_value(a, b) -> bool:
    """Equal, with NaN equal to itself (json reads NaN; the objects must still match)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same_value, a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("data", LINES)
def test_a_line_reads_as_json_reads_it(data):
    fast = export.parse_line(7, data)
    plain = export._parse_line_with_json(7, data.rstrip(b"\r\n"))  # as parse_line hands it
    assert (fast.line_no, fast.raw, fast.error) == (plain.line_no, plain.raw, plain.error)
    assert _same_value(fast.obj, plain.obj)
    if fast.dumped:
        assert fast.raw == json.dumps(fast.obj, ensure_ascii=False)


def test_a_line_in_json_dumps_form_is_recognised():
    dumped = [line for line in LINES if export.parse_line(1, line).dumped]
    assert dumped == [
        b'{"id": "a", "n": 1}',
        b'{"id": "a", "n": 123456789012345678901234567890}',
        '{"id": "a", "s": "Zoë \u2028 \x7f \\" \\\\ \\n"}'.encode(),
        b'{"id": "a"}\r\r',
        b'{"id": "a", "lines": {"data": [{"id": "il_1", "amount": 5}], "has_more": false}}',
    ]


@pytest.fixture(scope="module", params=sorted(SHAPES))
def bundle(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(f"fast_read_{request.param}")
    simulate(out=out, **COMPANY, **SHAPES[request.param])
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _with_odd_lines(folder: Path) -> None:
    """What a real export may hold, beside the simulator's lines (all in json.dumps' form)."""
    invoices = _lines(folder / "invoices.jsonl")
    first, second = json.loads(invoices[0]), json.loads(invoices[1])
    second["customer_name"] = "Zoë\u0007 Ünal"
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


def _read(folder: Path, bundle: Path, since_days: int | None = None, reader=extract_objects):
    end = bundle_as_of(bundle)
    since = end - timedelta(days=since_days) if since_days else None
    window = ExtractWindow(RunWindow("fast", end - timedelta(days=1), end), since)
    settings = SourceSettings(crm_url="", billing_url=str(folder), events_uri="", surveys_uri="")
    extracted = reader(window, settings)
    tables = {b.table.name: b.rows.drop_columns(["_loaded_at"]) for b in extracted.batches}
    return tables, extracted.bad


def _never_msgspec(data: bytes):
    raise ValueError("read with json")


@pytest.mark.parametrize("since_days", [None, 60])
def test_an_export_reads_as_plain_json_reads_it(bundle, tmp_path, monkeypatch, since_days):
    folder = tmp_path / "billing"
    shutil.copytree(bundle / "billing", folder)
    _with_odd_lines(folder)
    fast_tables, fast_bad = _read(folder, bundle, since_days)
    # The simulator writes json.dumps' form: the fast reading takes raw text from lines.
    written = _lines(bundle / "billing" / "invoices.jsonl")[:50]
    assert all(export.parse_line(1, line.encode("utf-8")).dumped for line in written)
    monkeypatch.setattr(export, "_decode", _never_msgspec)
    plain_tables, plain_bad = _read(folder, bundle, since_days)

    assert list(fast_tables) == list(plain_tables)
    for name, rows in fast_tables.items():
        assert rows.schema == plain_tables[name].schema, name
        assert rows.to_pylist() == plain_tables[name].to_pylist(), name
    assert fast_bad == plain_bad
    # Four bad lines, and the cut-short invoice unless the look-back leaves it out.
    assert len(fast_bad) == (5 if since_days is None else 4)
    assert fast_tables["billing_invoice_lines"].num_rows > 50

    bulk_tables, bulk_bad = _read(folder, bundle, since_days, extract_export_in_bulk)
    assert list(bulk_tables) == list(plain_tables)
    for name, rows in bulk_tables.items():
        assert rows.schema == plain_tables[name].schema, name
        assert _by_key(rows) == _by_key(plain_tables[name]), name
    assert bulk_bad == plain_bad


def _by_key(rows) -> list[dict]:
    """Rows in key order, `raw` as the JSON value it holds: the bulk reading keeps each
    line's text as written (json.dumps' spacing is not a value), in no row order."""
    keyed = []
    for row in rows.to_pylist():
        row["raw"] = json.loads(row["raw"])
        keyed.append(row)
    return sorted(
        keyed,
        key=lambda row: (
            row.get("id") or "",
            row.get("invoice_id") or "",
            row.get("line_id") or "",
        ),
    )


@pytest.mark.parametrize("data", LINES)
def test_a_line_reads_in_bulk_as_json_reads_it(data, tmp_path):
    """Each odd line alone as a price list: the bulk reading gives plain `json`'s rows
    and bad records; a line only `json` reads (which the object reader cannot store)
    is a bad line."""
    (tmp_path / "prices.jsonl").write_bytes(data + b"\n")
    window = ExtractWindow(RunWindow("one", T_END - timedelta(days=1), T_END), None)
    settings = SourceSettings(crm_url="", billing_url=str(tmp_path), events_uri="", surveys_uri="")
    bulk = extract(window, settings)
    if data in READ_ONLY_BY_JSON:
        assert [(b.location, b.reason) for b in bulk.bad] == [("prices.jsonl:1", REFUSED_BY_DUCKDB)]
        assert all(batch.rows.num_rows == 0 for batch in bulk.batches)
        return
    plain = extract_objects(window, settings)
    for mine, theirs in zip(bulk.batches, plain.batches, strict=True):
        mine_rows = [{**r, "raw": json.loads(r["raw"])} for r in _without_load_time(mine.rows)]
        plain_rows = [{**r, "raw": json.loads(r["raw"])} for r in _without_load_time(theirs.rows)]
        assert _same_value(mine_rows, plain_rows), mine.table.name
    assert bulk.bad == plain.bad


T_END = datetime(2026, 1, 1)
READ_ONLY_BY_JSON = {b'{"id": "a", "s": "\\ud800"}'}


def _without_load_time(rows) -> list[dict]:
    return rows.drop_columns(["_loaded_at"]).to_pylist()


def _drop(obj: dict, path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        obj = obj[key] if not key.isdigit() else obj[int(key)]
    del obj[last]


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ("customers", "created"),
        ("subscriptions", "status"),
        ("invoices", "currency"),
        ("invoices", "lines.data.0.amount"),
        ("invoices", "lines.data.0.period.end"),
        ("charges", "customer"),
    ],
)
def test_a_missing_field_fails_the_bulk_reading_as_it_fails_the_object_reader(
    bundle, tmp_path, resource, path
):
    from churnhouse.errors import ContractError

    folder = tmp_path / "billing"
    shutil.copytree(bundle / "billing", folder)
    lines = _lines(folder / f"{resource}.jsonl")
    obj = json.loads(lines[3])
    _drop(obj, path)
    lines[3] = json.dumps(obj)
    (folder / f"{resource}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    messages = []
    for reader in (extract_export_in_bulk, extract_objects):
        with pytest.raises(ContractError) as failure:
            _read(folder, bundle, None, reader)
        messages.append(str(failure.value))
    assert messages[0] == messages[1]
    assert f"{obj['id']}: missing field" in messages[0]
