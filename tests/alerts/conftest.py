"""Fixtures of the alerts tests: real receivers (alert_receivers.py) and a published
warehouse of a small simulated company whose last night follows a competitor churn."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alert_receivers import SIMULATION, Hooks, Mailbox, last_competitor_churn


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    try:
        yield box
    finally:
        if box.running:
            box.stop()


@pytest.fixture(scope="session")
def published_company(tmp_path_factory) -> Path:
    """A folder holding warehouse.duckdb and its published file, as of two days after the
    simulated company's last competitor churn (so tonight's week holds one)."""
    from churnhouse.config import sources_for_bundle
    from churnhouse.devkit.simulator import simulate
    from churnhouse.ingest import ingest_bundle_once
    from churnhouse.publish import publish
    from churnhouse.transform import build
    from churnhouse.warehouse import open_warehouse

    folder = tmp_path_factory.mktemp("alerts_company")
    bundle = folder / "bundle"
    simulate(out=bundle, workers=1, **SIMULATION)
    churned = last_competitor_churn(bundle)
    as_of = datetime(churned.year, churned.month, churned.day) + timedelta(days=2)
    warehouse = open_warehouse(str(folder / "night" / "warehouse.duckdb"))
    ingest_bundle_once(sources_for_bundle(bundle), warehouse, as_of)
    build(warehouse.url, as_of)
    publish(warehouse, f"night__{as_of:%Y-%m-%d}", as_of)
    return folder / "night"


@pytest.fixture
def company(published_company, tmp_path, monkeypatch) -> str:
    """A private copy of the published company (the ledger is written per test)."""
    night = tmp_path / "night"
    shutil.copytree(published_company, night)
    monkeypatch.delenv("CHURN_PUBLISHED_PATH", raising=False)
    return str(night / "warehouse.duckdb")
