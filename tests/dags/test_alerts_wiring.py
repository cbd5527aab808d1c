"""The nightly DAG's alert wiring: documented, time-boxed, failure notifier on every
task, the routing file checked first and the alerts sent only after publish."""

from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_alerts_run_after_publish_and_every_task_notifies_its_failure(tmp_path, monkeypatch):
    from datetime import timedelta

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    from airflow.dag_processing.dagbag import DagBag

    from churnhouse.alerts.notifier import NightFailedNotifier

    dag = DagBag(dag_folder=str(DAGS)).dags["churn_nightly"]
    assert "send_alerts" in dag.doc_md and "CHURN_ALERTS_CONFIG" in dag.doc_md
    assert dag.dagrun_timeout == timedelta(hours=6)
    assert dag.get_task("send_alerts").upstream_task_ids == {"publish"}
    assert dag.get_task("check_alerts_config").upstream_task_ids == set()
    from churnhouse.sources import source_names

    assert {t.task_id for t in dag.get_task("check_alerts_config").downstream_list} == {
        f"extract_{source}" for source in source_names()
    }
    for task in dag.tasks:
        callbacks = task.on_failure_callback
        assert any(isinstance(c, NightFailedNotifier) for c in callbacks), task.task_id
