"""`churnhouse run` shows one line per task with what it did and its seconds."""

from __future__ import annotations

from churnhouse.runner import TaskProgress

# The shape of `airflow dags test` output (Airflow 3.3): its own records start with a
# timestamp; what a task prints arrives as plain lines.
NIGHT = """\
2026-12-01T23:23:34.623573Z [info     ] [DAG TEST] starting task_id=extract_events map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-12-01T23:23:41.827990Z [info     ] events: 225197 rows loaded, 47 quarantined in 6.1s [churnhouse.load] loc=load.py:283
events: 225197 rows loaded, 47 quarantined in 6.1s
2026-12-01T23:23:41.833868Z [info     ] Pushing xcom                   [task] loc=task_runner.py:2280
2026-12-01T23:23:41.874317Z [info     ] [DAG TEST] end task task_id=extract_events map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-12-01T23:24:07.435130Z [info     ] [DAG TEST] starting task_id=validate_raw map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
[]    [great_expectations.datasource.fluent.config] loc=config.py:191
Calculating Metrics: 100%|██████████| 33/33 [00:00<00:00, 824.21it/s]
raw gate for events: raw_events on raw.events: 9 checks, ok
raw gate for events: volume_events on raw.events: 1 checks, FAILED
2026-12-01T23:24:28.627855Z [info     ] [DAG TEST] end task task_id=validate_raw map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-12-01T23:24:28.643866Z [info     ] [DAG TEST] starting task_id=build_marts map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
dbt seed: 3 seeds in 14.4s
dbt build: 3 exposures, 39 models, 169 tests, 18 unit_tests in 48.3s
2026-12-01T23:25:46.679727Z [info     ] [DAG TEST] end task task_id=build_marts map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-12-01T23:25:53.117922Z [info     ] [DAG TEST] starting task_id=publish map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-12-01T23:25:54.001000Z [error    ] Task failed with exception     [task] loc=task_runner.py:1
"""


def test_one_line_per_task_with_counts_and_seconds():
    progress = TaskProgress()
    shown = [line for line in map(progress.feed, NIGHT.splitlines()) if line]
    assert shown[:3] == [
        "extract_events      7.3s  events: 225197 rows loaded, 47 quarantined in 6.1s",
        "validate_raw       21.2s  2 suites, 10 checks, 1 FAILED",
        "build_marts        78.0s  seed: 3 seeds in 14.4s; "
        "build: 3 exposures, 39 models, 169 tests, 18 unit_tests in 48.3s",
    ]
    assert "Task failed with exception" in shown[3]  # an error is shown as it comes
    assert len(shown) == 4
