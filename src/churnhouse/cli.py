"""`churnhouse ...` commands. Each subcommand is one call into the package.

Every error a command meets is one line on stderr and exit code 2; the full
trace goes to `CHURN_HOME/logs/cli.log`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from datetime import date
from pathlib import Path


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr and exit code 2 (argparse prints the usage too)."""

    def error(self, message: str):
        print(f"{self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1: {text!r}")
    return value


def _simulate(args: argparse.Namespace) -> int:
    from churnhouse.devkit.simulator import simulate
    from churnhouse.devkit.stripe_shapes import CURRENT_API_VERSION

    summary = simulate(
        out=Path(args.out),
        customers=args.customers,
        months=args.months,
        start=args.start,
        seed=args.seed,
        crm_url=args.crm_url,
        stripe_api_version=args.stripe_api_version or CURRENT_API_VERSION,
        stripe_upgrade_at=args.stripe_upgrade_at and args.stripe_upgrade_at.isoformat(),
        events_style=args.events_style,
    )
    print(summary.describe())
    return 0


def _billing_api(args: argparse.Namespace) -> int:
    import os

    from churnhouse.devkit.billing_api import serve_forever

    api_key = args.api_key or os.environ.get("CHURN_BILLING_API_KEY")
    if not api_key:
        print("billing-api: give --api-key or set CHURN_BILLING_API_KEY", file=sys.stderr)
        return 2
    serve_forever(
        data_dir=Path(args.data),
        port=args.port,
        api_key=api_key,
        host=args.host,
        rate_limit_share=args.rate_limit_share,
        error_share=args.error_share,
        retry_after=args.retry_after,
        fault_seed=args.fault_seed,
        default_api_version=args.stripe_version,
    )
    return 0


def _alerts_config_refused(extra: dict[str, str]) -> bool:
    """A bad `CHURN_ALERTS_CONFIG` refuses the night before Airflow starts; a good one is
    handed to the DAG's tasks by its absolute path."""
    from churnhouse.alerts.config import (
        CONFIG_SETTING,
        AlertsConfigError,
        configured_path,
        load_config,
    )

    path = configured_path()
    if path is None:
        return False
    try:
        load_config(path)
    except AlertsConfigError as error:
        print(f"churnhouse: {error}", file=sys.stderr)
        return True
    extra[CONFIG_SETTING] = str(path.resolve())
    return False


FULL_REFRESH_SETTING = "CHURN_DBT_FULL_REFRESH"


def _night_settings(args: argparse.Namespace) -> dict[str, str] | None:
    """The settings `run` and `backfill` hand to the nights they start (None: refused)."""
    from churnhouse.config import sources_for_bundle

    extra: dict[str, str] = {}
    if _alerts_config_refused(extra):
        return None
    if args.bundle:
        sources_for_bundle(Path(args.bundle))  # a missing bundle fails here, in one line
        extra["CHURN_BUNDLE"] = str(Path(args.bundle).resolve())
    if args.warehouse:
        extra["CHURN_WAREHOUSE"] = args.warehouse
    if args.force:
        extra["CHURN_PUBLISH_FORCE"] = "1"
    if args.full_refresh:
        extra[FULL_REFRESH_SETTING] = "1"
    return extra


def _run(args: argparse.Namespace) -> int:
    from churnhouse.runner import run_day

    settings = _night_settings(args)
    return 2 if settings is None else run_day(args.date, settings)


def _backfill(args: argparse.Namespace) -> int:
    from churnhouse.runner import backfill

    if args.to_day < args.from_day:
        print("churnhouse backfill: --to is before --from", file=sys.stderr)
        return 2
    settings = _night_settings(args)
    return 2 if settings is None else backfill(args.from_day, args.to_day, settings)


def _grant_bi(args: argparse.Namespace) -> int:
    from churnhouse.warehouse import open_warehouse

    warehouse = open_warehouse(args.warehouse)
    if not hasattr(warehouse, "ensure_reader_role"):
        print(
            "churnhouse grant-bi: DuckDB readers open the published file read-only; "
            "there is no role to grant",
            file=sys.stderr,
        )
        return 2
    from churnhouse.warehouse.postgres import confines_cluster

    confine = args.confine_cluster or confines_cluster()
    role = warehouse.ensure_reader_role(confine_cluster=confine)
    print(f"read-only BI role ready: {role}")
    reachable = [] if confine else warehouse.databases_reachable_by(role)
    if reachable:
        closable = [d.name for d in reachable if d.changeable]
        print(
            f"churnhouse grant-bi: warning: {role} can still connect to the other databases "
            f"{', '.join(d.name for d in reachable)}; --confine-cluster "
            f"(CHURN_BI_CONFINE_CLUSTER=1) would close {', '.join(closable) or 'none of them'}, "
            "pg_hba.conf can refuse it the rest",
            file=sys.stderr,
        )
    return 0


def _query(args: argparse.Namespace) -> int:
    from churnhouse.query import QueryRefused, render, run_query
    from churnhouse.warehouse import open_warehouse

    try:
        columns, rows = run_query(open_warehouse(args.warehouse), args.sql)
    except (QueryRefused, FileNotFoundError) as error:
        print(f"churnhouse query: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the engine's own message: unknown table, timeout, ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"churnhouse query: {first}", file=sys.stderr)
        return 2
    print(render(columns, rows, args.format))
    return 0


def _alerts(args: argparse.Namespace) -> int:
    import os

    from churnhouse.alerts.config import CONFIG_SETTING, AlertsConfigError, load_config
    from churnhouse.alerts.night import dry_run, send_alerts
    from churnhouse.alerts.pipeline import check_freshness
    from churnhouse.warehouse import open_warehouse

    path = args.config or os.environ.get(CONFIG_SETTING)
    if not path:
        print(f"churnhouse alerts: give --config or set {CONFIG_SETTING}", file=sys.stderr)
        return 2
    try:
        config = load_config(path)
    except AlertsConfigError as error:
        print(f"churnhouse alerts: {error}", file=sys.stderr)
        return 2
    warehouse = open_warehouse(args.warehouse)
    if args.dry_run:
        print(dry_run(config, warehouse))
        return 0
    failed = [d for d in send_alerts(config, warehouse) if d.error is not None]
    check_freshness(config, warehouse)
    return 1 if failed else 0


def _docs(args: argparse.Namespace) -> int:
    from churnhouse.config import churn_home, warehouse_url
    from churnhouse.transform import docs

    out = Path(args.out) if args.out else churn_home() / "dbt_docs"
    page = docs(args.warehouse or warehouse_url(), out)
    print(f"dbt docs (one file, opens offline): {page}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from churnhouse.dashboard import dashboard_dir, serve, write_dashboard
    from churnhouse.warehouse import open_warehouse

    try:
        index = write_dashboard(open_warehouse(args.warehouse), args.out and Path(args.out))
    except FileNotFoundError as error:
        folder = Path(args.out).resolve() if args.out else dashboard_dir()
        if args.no_serve or not (folder / "index.html").exists():
            print(f"churnhouse dashboard: {error}", file=sys.stderr)
            return 2
        index = folder / "index.html"
        print(f"churnhouse dashboard: {error}; serving the last page written", file=sys.stderr)
    if args.no_serve:
        print(f"dashboard: {index}")
        return 0
    serve(index.parent, host=args.host, port=args.port)
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from churnhouse.config import warehouse_url
    from churnhouse.metrics import query_metrics

    try:
        return query_metrics(args.warehouse or warehouse_url(), args.mf_args)
    except FileNotFoundError as error:
        print(f"churnhouse metrics: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="churnhouse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    sim = commands.add_parser("simulate", help="write a simulated company's source bundle")
    sim.add_argument("--out", required=True, help="bundle folder to write")
    sim.add_argument("--customers", type=_positive, default=200)
    sim.add_argument("--months", type=_positive, default=12)
    sim.add_argument("--start", default="2024-01", help="first month, YYYY-MM")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument(
        "--crm-url",
        default=None,
        help="SQLAlchemy URL for the CRM (default: OUT/crm.sqlite)",
    )
    sim.add_argument(
        "--stripe-api-version",
        default=None,
        help="the Stripe API version whose object shape billing is written in "
        "(default 2025-03-31.basil; e.g. 2025-02-24.acacia for the shape before 2025-03-31)",
    )
    sim.add_argument(
        "--stripe-upgrade-at",
        default=None,
        type=_day,
        help="YYYY-MM-DD: the account moved to --stripe-api-version that day; invoices "
        "created before it are in the old shape",
    )
    sim.add_argument(
        "--events-style",
        choices=("wire", "warehouse"),
        default="wire",
        help="Segment key style of the event files: wire (camelCase, as the tracking "
        "libraries send it; default) or warehouse (snake_case)",
    )
    sim.set_defaults(func=_simulate)

    api = commands.add_parser(
        "billing-api", help="serve a billing export folder as a Stripe-like API"
    )
    api.add_argument("--data", required=True, help="billing export folder (customers.jsonl, ...)")
    api.add_argument("--port", type=int, default=12111)
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--api-key", default=None, help="bearer key (or CHURN_BILLING_API_KEY)")
    api.add_argument("--rate-limit-share", type=float, default=0.0, help="share of 429 answers")
    api.add_argument("--error-share", type=float, default=0.0, help="share of 500 answers")
    api.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds on 429")
    api.add_argument("--fault-seed", type=int, default=0)
    api.add_argument(
        "--stripe-version",
        default=None,
        help="the account's default API version, answering requests without a Stripe-Version "
        "header (default 2025-03-31.basil)",
    )
    api.set_defaults(func=_billing_api)

    run = commands.add_parser(
        "run", help="run the nightly DAG for one day (interval [D, D+1) UTC) through Airflow"
    )
    run.add_argument("--date", required=True, type=_day, help="the day D, YYYY-MM-DD")
    _night_arguments(run)
    run.set_defaults(func=_run)

    fill = commands.add_parser(
        "backfill",
        help="run the nightly DAG for each day D1..D2 in order; rerun it to resume after a failure",
    )
    fill.add_argument("--from", dest="from_day", required=True, type=_day, help="YYYY-MM-DD")
    fill.add_argument("--to", dest="to_day", required=True, type=_day, help="YYYY-MM-DD")
    _night_arguments(fill)
    fill.set_defaults(func=_backfill)

    grant = commands.add_parser(
        "grant-bi", help="PostgreSQL: create or fix the read-only BI role (CHURN_BI_ROLE)"
    )
    grant.add_argument("--warehouse", default=None, help="PostgreSQL URL (default CHURN_WAREHOUSE)")
    grant.add_argument(
        "--confine-cluster",
        action="store_true",
        help="also close the cluster's other databases to the role: CONNECT moves from PUBLIC "
        "to every other role by name (CHURN_BI_CONFINE_CLUSTER=1; rerun after creating a database)",
    )
    grant.set_defaults(func=_grant_bi)

    query = commands.add_parser("query", help="a read-only query on the published tables")
    query.add_argument("sql", help='e.g. "SELECT * FROM churn_monthly LIMIT 5"')
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.add_argument("--warehouse", default=None, help="DuckDB path or PostgreSQL URL")
    query.set_defaults(func=_query)

    alerts = commands.add_parser(
        "alerts", help="send tonight's alerts (or --dry-run: print what the routing would send)"
    )
    alerts.add_argument("--dry-run", action="store_true", help="print, send and record nothing")
    alerts.add_argument("--config", default=None, help="routing file (default CHURN_ALERTS_CONFIG)")
    alerts.add_argument("--warehouse", default=None, help="DuckDB path or PostgreSQL URL")
    alerts.set_defaults(func=_alerts)

    documentation = commands.add_parser(
        "docs", help="dbt docs as one static HTML file: the marts, their columns, types and lineage"
    )
    documentation.add_argument("--out", default=None, help="folder (default CHURN_HOME/dbt_docs)")
    documentation.add_argument("--warehouse", default=None, help="default: CHURN_WAREHOUSE")
    documentation.set_defaults(func=_docs)

    dashboard = commands.add_parser(
        "dashboard", help="write the churn dashboard from the published tables and serve it"
    )
    dashboard.add_argument("--warehouse", default=None, help="default: CHURN_WAREHOUSE")
    dashboard.add_argument("--out", default=None, help="folder (default CHURN_HOME/dashboard)")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8050, help="0 picks a free port")
    dashboard.add_argument(
        "--no-serve", action="store_true", help="only write index.html and print its path"
    )
    dashboard.set_defaults(func=_dashboard)

    metrics = commands.add_parser(
        "metrics",
        allow_abbrev=False,
        help="query the metrics defined once in dbt (MetricFlow's `mf query` arguments)",
        description="e.g. churnhouse metrics --metrics logo_churn_rate,net_revenue_retention "
        "--group-by metric_time__month,churn_cut__segment (see `mf query --help`)",
    )
    metrics.add_argument("--warehouse", default=None, help="default: CHURN_WAREHOUSE")
    metrics.add_argument("mf_args", nargs=argparse.REMAINDER, help="arguments of `mf query`")
    metrics.set_defaults(func=_metrics)
    return parser


def _night_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--bundle", default=None, help="a bundle folder (else CHURN_* settings)")
    command.add_argument("--warehouse", default=None, help="DuckDB path or PostgreSQL URL")
    command.add_argument(
        "--force", action="store_true", help="publish even over a newer publication"
    )
    command.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild dbt's incremental models from scratch (nights normally update them)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "metrics":  # everything it does not know goes to `mf query`
        args.mf_args = [*unknown, *args.mf_args]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        log_file = _log_trace()
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(
            f"churnhouse {args.command}: {type(error).__name__}: {first} (trace: {log_file})",
            file=sys.stderr,
        )
        return 2


def _log_trace() -> Path:
    from churnhouse.config import churn_home

    folder = churn_home() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "cli.log", "a", encoding="utf-8") as log:
        log.write(traceback.format_exc())
    return folder / "cli.log"


if __name__ == "__main__":
    sys.exit(main())
