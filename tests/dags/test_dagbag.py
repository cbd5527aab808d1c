"""The DAG folder imports cleanly, fast, and without touching any source or warehouse."""

import socket
from datetime import UTC
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "churn_nightly" in dagbag.dag_ids


def test_every_dag_declares_owner_tags_retries_timeouts_and_catchup(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.catchup is False, dag_id
        for task in dag.tasks:
            assert task.owner == "churnhouse", task.task_id
            assert task.retries >= 1, task.task_id
            assert task.retry_exponential_backoff, task.task_id
            assert task.execution_timeout is not None, task.task_id


def test_nightly_interval_is_one_utc_day(dagbag):
    from datetime import datetime

    from airflow.serialization.encoders import coerce_to_core_timetable

    # What the scheduler runs: the core form of the DAG's airflow.sdk timetable.
    timetable = coerce_to_core_timetable(dagbag.dags["churn_nightly"].timetable)
    interval = timetable.infer_manual_data_interval(run_after=datetime(2024, 9, 3, tzinfo=UTC))
    assert (interval.start, interval.end) == (
        datetime(2024, 9, 2, tzinfo=UTC),
        datetime(2024, 9, 3, tzinfo=UTC),
    )


def test_extract_tasks_declare_raw_assets(dagbag):
    dag = dagbag.dags["churn_nightly"]
    for source in ("crm", "billing", "events", "surveys"):
        outlets = dag.get_task(f"extract_{source}").outlets
        assert [asset.uri for asset in outlets] == [f"churnhouse://raw/{source}"]


def test_parsing_opens_no_connection_and_reads_no_setting(monkeypatch):
    """Parse the DAG file with sockets forbidden and every CHURN_* setting pointing nowhere."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("CHURN_WAREHOUSE", "postgresql://nobody@203.0.113.1:1/none")
    monkeypatch.setenv("CHURN_CRM_URL", "postgresql://nobody@203.0.113.1:1/none")

    def no_network(*args, **kwargs):
        raise AssertionError("a connection was opened while parsing the DAG")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert "churn_nightly" in bag.dag_ids
