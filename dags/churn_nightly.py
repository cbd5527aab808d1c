"""churn_nightly: one day's interval, from the four sources to the published churn tables.

extract (per source, raw Assets) -> raw gate -> dbt build into the audit schema ->
marts gate -> publish all marts at once (one Asset per mart). A failed gate fails
the run and leaves yesterday's published tables as they were.

This file only wires tasks; each task body is one call into the `churnhouse`
package. Nothing at module level reads settings or opens a connection.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

SOURCES = ("crm", "billing", "events", "surveys")
RAW_ASSETS = {source: Asset(f"churnhouse://raw/{source}") for source in SOURCES}
MARTS = (
    "churn_monthly",
    "churn_events",
    "churn_reasons",
    "cancel_saves",
    "dim_customers",
    "fct_customer_mrr_monthly",
    "engagement_monthly",
    "nps_monthly",
    "identity_unmatched",
)
MART_ASSETS = [Asset(f"churnhouse://analytics/{mart}") for mart in MARTS]

DEFAULT_ARGS = {
    "owner": "churnhouse",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(minutes=60),
}


@dag(
    dag_id="churn_nightly",
    description="Nightly churn dataset: CRM, billing, events and surveys into the warehouse",
    # Interval [D 00:00, D+1 00:00) UTC, run just after it closes.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["churnhouse", "churn", "nightly"],
)
def churn_nightly():
    extracts = []
    for source in SOURCES:

        @task(task_id=f"extract_{source}", outlets=[RAW_ASSETS[source]])
        def extract(source: str = source) -> dict:
            from churnhouse.tasks import extract_source

            return extract_source(source)

        extracts.append(extract())

    @task
    def validate_raw() -> dict:
        """The raw gate of every source on tonight's batch (one GE start-up for all four)."""
        from churnhouse.tasks import validate_raw

        return validate_raw(SOURCES)

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

    extracts >> validate_raw() >> build_marts() >> validate_marts() >> publish()


churn_nightly()
