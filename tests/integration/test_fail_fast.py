"""Errors no retry can fix fail within seconds, in one line that names the setting or path."""

from __future__ import annotations

import socket
import time
from datetime import datetime

import pytest

from churnhouse.cli import main
from churnhouse.config import SourceSettings
from churnhouse.contracts import RunWindow
from churnhouse.errors import PermanentError
from churnhouse.ingest import ingest
from churnhouse.sources.billing import BillingApiClient
from churnhouse.sources.billing.client import BillingApiUnreachable

NIGHT = RunWindow("night-1", datetime(2024, 9, 2), datetime(2024, 9, 3))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


def test_an_unreachable_billing_api_fails_in_seconds_naming_the_setting():
    started = time.monotonic()
    with BillingApiClient(f"http://127.0.0.1:{closed_port()}", "sk_test") as client:
        with pytest.raises(BillingApiUnreachable, match="CHURN_BILLING_URL") as failure:
            list(client.iter_objects("customers"))
    assert time.monotonic() - started < 10
    assert isinstance(failure.value, PermanentError)


def test_an_unreachable_crm_database_fails_in_seconds_naming_the_setting(warehouse):
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/crm"
    settings = SourceSettings(crm_url=url, billing_url="", events_uri="", surveys_uri="")
    started = time.monotonic()
    with pytest.raises(PermanentError, match="cannot reach the CRM database .*CHURN_CRM_URL"):
        ingest("crm", NIGHT, settings, warehouse)
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--date", "2024-13-01"], "argument --date: not a date YYYY-MM-DD: '2024-13-01'"),
        (["simulate", "--out", "x", "--months", "0"], "argument --months: must be a whole number"),
        (
            ["run", "--date", "2024-09-01", "--bundle", "/no/such/bundle"],
            "/no/such/bundle does not exist",
        ),
        (["backfill", "--from", "2024-09-05", "--to", "2024-09-01"], "--to is before --from"),
    ],
    ids=["bad-date", "zero-months", "missing-bundle", "backwards-range"],
)
def test_cli_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_HOME", str(tmp_path))
    started = time.monotonic()
    assert exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "\n" not in err and "Traceback" not in err
    assert time.monotonic() - started < 10


def exit_code(argv: list[str]) -> int:
    """The code `churnhouse ARGV` exits with (argparse's usage errors exit by themselves)."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


def test_an_unknown_table_in_query_is_one_line(tmp_path, capsys, monkeypatch):
    from churnhouse.publish import publish
    from churnhouse.warehouse import open_warehouse

    warehouse = open_warehouse(str(tmp_path / "w.duckdb"))
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA analytics_audit")
        tx.execute("CREATE TABLE analytics_audit.churn_monthly AS SELECT 1 AS x")
    publish(warehouse, "night-1", datetime(2024, 4, 1))
    assert main(["query", "--warehouse", warehouse.url, "SELECT * FROM no_such_table"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("churnhouse query: ") and "no_such_table" in err and "\n" not in err
