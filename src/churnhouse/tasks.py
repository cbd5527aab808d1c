"""Task bodies of the DAGs: read the Airflow context, call the package, return small XComs."""

from __future__ import annotations

from contextlib import contextmanager

from churnhouse.contracts import RunWindow, naive_utc
from churnhouse.errors import PermanentError
from churnhouse.warehouse import UnsafeIdentifierError


def current_run() -> RunWindow:
    """The running task's data interval as naive UTC datetimes."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    start, end = context["data_interval_start"], context["data_interval_end"]
    return RunWindow(context["run_id"], naive_utc(start), naive_utc(end))


@contextmanager
def permanent_errors_fail_fast():
    """Errors that a retry cannot fix fail the task at once instead of retrying."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except (PermanentError, FileNotFoundError, UnsafeIdentifierError) as error:
        raise AirflowFailException(f"{type(error).__name__}: {error}") from error


def extract_source(source: str) -> dict:
    """Ingest one source for the current run; the XCom carries counts only (no secrets)."""
    from churnhouse.ingest import ingest

    run = current_run()
    with permanent_errors_fail_fast():
        result = ingest(source, run)
    return {
        "source": result.source,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "interval_start": run.interval_start.isoformat(),
        "interval_end": run.interval_end.isoformat(),
    }


def validate_raw() -> dict:
    """The raw gate of every source on tonight's batches; any failure stops the night."""
    from churnhouse.gates import run_raw_gate
    from churnhouse.sources import source_names
    from churnhouse.warehouse import open_warehouse

    run = current_run()
    with permanent_errors_fail_fast():
        outcomes = run_raw_gate(open_warehouse(), source_names(), run)
    return {"suites": len(outcomes), "checks": sum(o.evaluated for o in outcomes)}


def build_marts() -> dict:
    """dbt: seeds, snapshot and the models into the audit schema, as of the interval end;
    the incremental models only update unless `CHURN_DBT_FULL_REFRESH` asks for a rebuild."""
    from churnhouse.config import warehouse_url
    from churnhouse.transform import build, full_refresh_requested

    run = current_run()
    with permanent_errors_fail_fast():
        result = build(warehouse_url(), run.interval_end, full_refresh=full_refresh_requested())
    return {"as_of": run.interval_end.isoformat(), "summary": str(result)[:500]}


def validate_marts() -> dict:
    """The marts gate on the audit schema; a failure keeps yesterday's tables published."""
    from churnhouse.gates import run_marts_gate
    from churnhouse.warehouse import open_warehouse

    run = current_run()
    with permanent_errors_fail_fast():
        outcomes = run_marts_gate(open_warehouse(), run)
    return {"suites": len(outcomes), "checks": sum(o.evaluated for o in outcomes)}


def publish_marts() -> dict:
    """Publish every audited mart at once, then draw the dashboard from them."""
    from churnhouse.dashboard import write_after_publish
    from churnhouse.publish import publish
    from churnhouse.warehouse import open_warehouse

    run = current_run()
    with permanent_errors_fail_fast():
        publication = publish(open_warehouse(), run.run_id, run.interval_end)
    dashboard = write_after_publish(open_warehouse())
    return {
        "tables": list(publication.tables),
        "run_id": publication.run_id,
        "dashboard": str(dashboard) if dashboard else None,
    }


def check_alerts_config() -> dict:
    """Refuse the night before it starts when the alerts routing file is wrong."""
    from churnhouse.alerts.config import configured_path, load_config

    path = configured_path()
    if path is None:
        return {"alerts": "off"}
    with permanent_errors_fail_fast():
        config = load_config(path)
    return {"alerts": str(path), "teams": len(config.teams), "routes": len(config.routes)}


def send_alerts() -> dict:
    """After publish: tonight's digests to the teams, then the freshness check."""
    from churnhouse.alerts.config import configured_path, load_config
    from churnhouse.alerts.night import send_alerts
    from churnhouse.alerts.pipeline import check_freshness
    from churnhouse.warehouse import open_warehouse

    path = configured_path()
    if path is None:
        return {"alerts": "off"}
    with permanent_errors_fail_fast():
        config = load_config(path)
    warehouse = open_warehouse()
    deliveries = send_alerts(config, warehouse)
    stale = check_freshness(config, warehouse)
    return {
        "sent": sum(len(d.digest.items) for d in deliveries if d.error is None),
        "failed_channels": [d.channel.key for d in deliveries if d.error is not None],
        "stale": stale,
    }
