"""Airflow notifiers (`BaseNotifier`) for the DAG's `on_failure_callback`.

Our own subclass rather than the Slack / SMTP providers' notifiers: the data team's
channels are the routing file's channels (Slack, e-mail or JSON webhook, one
connection convention and one transport for digests and pipeline alerts).
Constructing it reads nothing; `notify` loads `CHURN_ALERTS_CONFIG` when it runs.
"""

from __future__ import annotations

from airflow.sdk import BaseNotifier


def _error_text(context) -> str:
    error = context.get("exception")
    if error is None:
        return "(no exception in the task context; see the task log)"
    return f"{type(error).__name__}: {error}"


class NightFailedNotifier(BaseNotifier):
    """A failed task: the error (a failed gate lists its expectations) to the data team,
    then the freshness check (a failed night leaves an older publication in place)."""

    template_fields = ()

    def notify(self, context) -> None:
        from churnhouse.alerts.config import AlertsConfigError, configured_path, load_config
        from churnhouse.alerts.pipeline import check_freshness, failure_message, send_to_data_team
        from churnhouse.warehouse import open_warehouse

        path = configured_path()
        if path is None:
            return
        try:
            config = load_config(path)
        except AlertsConfigError as error:  # the night was refused for this very reason
            print(f"alerts: nobody told of this failure: {error}", flush=True)
            return
        ti = context.get("ti") or context.get("task_instance")
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        interval = f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC" if start and end else "?"
        message = failure_message(
            dag_id=getattr(ti, "dag_id", "?"),
            run_id=str(context.get("run_id")),
            task_id=getattr(ti, "task_id", "?"),
            interval=interval,
            error=_error_text(context),
        )
        send_to_data_team(config, *message)
        check_freshness(config, open_warehouse())
