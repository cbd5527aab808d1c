"""Alerts: tell the team that owns it, the same night.

- `config`: the routing file (`CHURN_ALERTS_CONFIG`), checked line by line;
- `connections`: secrets from the Airflow connections the file names;
- `items`: churns, cancellation requests, saves and customers entering high risk,
  read from the published tables only;
- `digest`, `channels`: one digest per team per channel (Slack, e-mail, JSON webhook);
- `ledger`: what was sent where, so nothing is sent twice and nothing is lost;
- `night`: tonight's sending; `pipeline` and `notifier`: failed and stale nights
  to the data team, through Airflow's notifier callbacks.

Nothing here is imported at DAG parse time beyond `notifier`, which imports
nothing heavy until it runs.
"""
