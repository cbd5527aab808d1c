"""A real multi-process Airflow deployment: CeleryExecutor with a Redis broker, metadata
and warehouse on PostgreSQL, API server, scheduler, DAG processor and two Celery workers
as separate processes; the night the scheduler runs there against a LocalExecutor night.

Runs `churnhouse.devkit.celery_demo` (what `make celery-demo` runs) once for the module.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time

import pytest
from servers import PG_HOST, PG_PORT, require_server

from churnhouse.devkit import celery_demo
from churnhouse.sources import source_names

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.postgres]

TASKS = {
    "check_alerts_config",
    *(f"extract_{source}" for source in source_names()),
    "validate_raw",
    "build_marts",
    "validate_marts",
    "publish",
    "send_alerts",
}


@pytest.fixture(scope="module")
def demo() -> celery_demo.DemoResult:
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    require_server("Redis", celery_demo.REDIS_HOST, celery_demo.REDIS_PORT)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="celery-deployment-") as folder:
        yield celery_demo.run_demo(Path(folder))


def test_the_scheduler_ran_the_due_night_on_celery_and_every_task_succeeded(demo):
    night = demo.celery
    first, last = celery_demo.due_interval()
    assert night.run_type == "scheduled", "created by the scheduler, not `dags test`"
    assert night.interval == (
        datetime.combine(first, time(), UTC),
        datetime.combine(last, time(), UTC),
    )
    assert night.state == "success", night.task_states
    assert night.task_states == dict.fromkeys(TASKS, "success")


def test_tasks_ran_on_both_workers_and_only_there(demo):
    per_worker = demo.tasks_per_worker()
    assert per_worker["worker-1"] >= 1 and per_worker["worker-2"] >= 1, per_worker
    assert set(demo.celery.task_hosts.values()) <= set(celery_demo.WORKERS)
    assert sum(per_worker.values()) == len(TASKS)
    assert re.fullmatch(
        r"tasks per worker: worker-1=[1-9]\d*, worker-2=[1-9]\d*", demo.tasks_line()
    )


def test_the_published_tables_equal_a_localexecutor_night(demo):
    local = demo.local
    assert (local.run_type, local.state) == ("scheduled", "success"), local.task_states
    assert local.interval == demo.celery.interval
    assert demo.celery.published["churn_monthly"][0] > 0
    assert len(demo.celery.published) >= 10, sorted(demo.celery.published)
    assert demo.celery.published == local.published
    assert demo.problems() == []


def test_no_process_or_database_is_left_behind(demo):
    for night in (demo.celery, demo.local):
        assert night.leftover == []
        assert celery_demo.processes_with_marker(night.marker) == []
        assert celery_demo.existing_databases(*night.databases) == []
