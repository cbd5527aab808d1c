"""churn_nightly: one day's interval, from the sources to the published churn tables.

This file only wires tasks; each task body is one call into `churnhouse.tasks`.
Nothing at module level reads settings or opens a connection.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from churnhouse.alerts.notifier import NightFailedNotifier
from churnhouse.contracts import PUBLISHED_MARTS
from churnhouse.sources import source_names

SOURCES = source_names()
RAW_ASSETS = {source: Asset(f"churnhouse://raw/{source}") for source in SOURCES}
MART_ASSETS = [Asset(f"churnhouse://analytics/{mart}") for mart in PUBLISHED_MARTS]

DOC_MD = """
### churn_nightly

One night of the churn dataset, for the data interval `[D 00:00, D+1 00:00)` UTC.

1. **extract_&lt;source&gt;** (one per source, in parallel): read the source from the
   previous run's end minus its look-back, load it into schema `raw` in one
   transaction; bad records go to `raw._quarantine` with the reason.
2. **validate_raw**: the Great Expectations raw gate on tonight's batches, and
   each source's volume against its usual volume.
3. **build_marts**: dbt seeds, the CRM snapshot, then every model with its data
   and unit tests, into the audit schema `analytics_audit`.
4. **validate_marts**: the marts gate (MRR reconciled with the billing lines, no
   personal data) on the audit schema.
5. **publish**: every mart into `analytics` at once (one Asset per mart).
6. **send_alerts** (when `CHURN_ALERTS_CONFIG` is set): tonight's churns,
   cancellation requests, saves and customers entering high risk to the teams their
   reason routes to, once per channel (ledger `raw._alerts_sent`); then the
   freshness check. **check_alerts_config** runs first and refuses a bad routing
   file before anything else runs.

A failed task fails the night and leaves yesterday's published tables as they
were. Task errors that no retry can fix (bad input, bad configuration) fail at
once; others are retried with back-off. Every failed task tells the routing
file's `pipeline: team:` (a failed gate lists its failing expectations), and so
does a publication older than its `freshness_hours`. See README "Alerts".
"""

DEFAULT_ARGS = {
    "owner": "churnhouse",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(minutes=60),
    "on_failure_callback": [NightFailedNotifier()],
}


@dag(
    dag_id="churn_nightly",
    description="Nightly churn dataset: CRM, billing, events and surveys into the warehouse",
    doc_md=DOC_MD,
    # Interval [D 00:00, D+1 00:00) UTC, run just after it closes.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=DEFAULT_ARGS,
    tags=["churnhouse", "churn", "nightly"],
)
def churn_nightly():
    @task
    def check_alerts_config() -> dict:
        """A bad alerts routing file refuses the night before anything runs."""
        from churnhouse.tasks import check_alerts_config

        return check_alerts_config()

    checked = check_alerts_config()
    extracts = []
    for source in SOURCES:

        @task(task_id=f"extract_{source}", outlets=[RAW_ASSETS[source]])
        def extract(source: str = source) -> dict:
            from churnhouse.tasks import extract_source

            return extract_source(source)

        extracts.append(extract())

    @task
    def validate_raw() -> dict:
        """The raw gate of every source on tonight's batch (one GE start-up for all)."""
        from churnhouse.tasks import validate_raw

        return validate_raw()

    @task(inlets=list(RAW_ASSETS.values()))
    def build_marts() -> dict:
        """dbt seeds, snapshot and build into the audit schema, as of the interval end."""
        from churnhouse.tasks import build_marts

        return build_marts()

    @task
    def validate_marts() -> dict:
        from churnhouse.tasks import validate_marts

        return validate_marts()

    @task(outlets=MART_ASSETS)
    def publish() -> dict:
        """All audited marts at once; BI refreshes can wait on these assets."""
        from churnhouse.tasks import publish_marts

        return publish_marts()

    @task
    def send_alerts() -> dict:
        """Tonight's churns, requests, saves and new high-risk customers to their teams."""
        from churnhouse.tasks import send_alerts

        return send_alerts()

    checked >> extracts
    extracts >> validate_raw() >> build_marts() >> validate_marts() >> publish() >> send_alerts()


churn_nightly()
