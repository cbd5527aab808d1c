"""Billing into the raw layer: over real HTTP with injected 429/500s, and from the export folder."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from factories import KEY, table_fingerprint, write_billing_export

from churnhouse.config import SourceSettings
from churnhouse.contracts import RunWindow
from churnhouse.devkit.billing_api import start_in_background
from churnhouse.errors import ContractError
from churnhouse.ingest import ingest
from churnhouse.warehouse import Warehouse, open_warehouse

RUN = RunWindow("night-1", datetime(2024, 6, 20), datetime(2024, 6, 21))
TABLES = (
    "raw.billing_prices",
    "raw.billing_customers",
    "raw.billing_subscriptions",
    "raw.billing_invoices",
    "raw.billing_invoice_lines",
    "raw.billing_charges",
)


@pytest.fixture
def export(tmp_path):
    folder = tmp_path / "billing"
    write_billing_export(folder)
    return folder


def counts(warehouse: Warehouse) -> dict[str, tuple[int, int]]:
    """Rows and checksums of the raw tables' columns; the whole JSON as received (`raw`)
    is left out: the export holds the older Stripe shape, the API answers in the version
    the client asks for (2025-03-31.basil), and both land the same columns."""
    ignore = ("_loaded_at", "_run_id", "raw")
    with warehouse.transaction() as tx:
        return {table: table_fingerprint(tx, table, ignore) for table in TABLES}


def test_api_with_faults_yields_the_complete_duplicate_free_set(export, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    faulty = start_in_background(
        export, KEY, rate_limit_share=0.25, error_share=0.15, retry_after=0, fault_seed=3
    )
    with faulty:
        sources = SourceSettings(
            crm_url="", billing_url=faulty.url, events_uri="", surveys_uri="", billing_api_key=KEY
        )
        api_side = open_warehouse(str(tmp_path / "api.duckdb"))
        ingest("billing", RUN, sources, api_side)
        assert faulty.status_counts[429] > 0 and faulty.status_counts[500] > 0
    folder_side = open_warehouse(str(tmp_path / "folder.duckdb"))
    ingest("billing", RUN, SourceSettings("", str(export), "", ""), folder_side)
    api_counts = counts(api_side)
    assert {t: n for t, (n, _) in api_counts.items()} == {
        "raw.billing_prices": 2,
        "raw.billing_customers": 15,
        "raw.billing_subscriptions": 10,
        "raw.billing_invoices": 250,
        "raw.billing_invoice_lines": 250,
        "raw.billing_charges": 20,
    }
    assert api_counts == counts(folder_side), "the API and the export folder land the same rows"
    everything_said = caplog.text + "".join(capsys.readouterr())
    assert KEY not in everything_said, "the API key never reaches a log line"


def test_the_export_folder_quarantines_its_bad_lines_and_loads_the_rest(export, tmp_path):
    warehouse = open_warehouse(str(tmp_path / "w.duckdb"))
    result = ingest("billing", RUN, SourceSettings("", str(export), "", ""), warehouse)
    assert result.rows_quarantined == 3
    with warehouse.transaction() as tx:
        quarantined = tx.fetchall("SELECT location, reason FROM raw._quarantine ORDER BY location")
        void = tx.fetchone("SELECT status FROM raw.billing_invoices WHERE id = 'in_0007'")
    assert [location for location, _ in quarantined] == [
        "invoices.jsonl:101",
        "invoices.jsonl:252",
        "invoices.jsonl:253",
    ]
    assert void == ("void",), "a later line replaces the earlier copy"


def test_a_field_the_models_need_fails_the_load_naming_it(export, tmp_path):
    lines = (export / "invoices.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace('"period": {"start": 1725148800, "end": 1727740800}, ', "")
    (export / "invoices.jsonl").write_text("\n".join(lines) + "\n")
    warehouse = open_warehouse(str(tmp_path / "w.duckdb"))
    with pytest.raises(
        ContractError, match=r"billing invoice in_0000: missing field lines.data\[0\].'period'"
    ):
        ingest("billing", RUN, SourceSettings("", str(export), "", ""), warehouse)
    with warehouse.transaction() as tx:
        assert tx.fetchall("SELECT status FROM raw._loads") == [("failed",)]
