"""`make celery-demo`: one scheduled night on a real multi-process Airflow deployment.

A small simulated company is run twice through the nightly DAG, each time by a
real Airflow scheduler with its metadata in PostgreSQL and the warehouse on
PostgreSQL:

1. CeleryExecutor (Redis broker): API server, scheduler, DAG processor and two
   Celery workers, each a separate process (group);
2. LocalExecutor: API server, scheduler and DAG processor, as the reference.

Neither uses `airflow dags test`: the DAG is unpaused and the scheduler creates
the run of the one interval that is due, `[yesterday 00:00, today 00:00)` UTC
(`catchup=False`), so the company is simulated up to the end of this month.
The task instances' `hostname` column (metadata DB) says which worker ran each
task: every worker here runs on one machine, so each gets its own name through
`[core] hostname_callable` (in `docker/compose.yaml` each container's hostname
does that). The published tables of the two nights are compared by checksum.
Every process is stopped at the end (process groups, then any process that
still carries the run's marker variable), also on failure or Ctrl-C, and the
per-run databases are dropped.

Ends with one line `tasks per worker: NAME=n, NAME=m`; exits non-zero when the
night failed, a worker ran nothing or the published tables differ.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DAG_ID = "churn_nightly"
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
WORKERS = ("worker-1", "worker-2")
WORKER_CONCURRENCY = 1
NIGHT_TIMEOUT = 20 * 60.0
SIMULATION = {"customers": 25, "months": 3, "seed": 5}
MARKER = "CHURN_DEPLOYMENT_ID"  # inherited by every process of one deployment
WORKER_NAME = "CHURN_WORKER_NAME"

# The Airflow 3 settings every process of a deployment shares. `docker/compose.yaml`
# sets exactly these (tests/unit/test_compose.py holds the two together).
DEPLOYMENT_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
    "AIRFLOW__OPERATORS__DEFAULT_QUEUE",
    # Task processes on the workers talk to the API server, with tokens every process
    # signs and checks with the same secret ("Invalid auth token" otherwise).
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__WORKERS",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY",
    "DBT_SEND_ANONYMOUS_USAGE_STATS",
    "GX_ANALYTICS_ENABLED",
    "CHURN_WAREHOUSE",
)


def worker_hostname() -> str:
    """`[core] hostname_callable` of the demo: the worker's name, else the machine's FQDN."""
    return os.environ.get(WORKER_NAME) or socket.getfqdn()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deployment_settings(
    executor: str, metadata_db: str, warehouse_db: str, api_port: int, queue: str
) -> dict[str, str]:
    """The values of DEPLOYMENT_SETTINGS for one deployment on this machine."""
    from cryptography.fernet import Fernet

    metadata = f"postgres@{PG_HOST}:{PG_PORT}/{metadata_db}"
    settings = {
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{metadata}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{metadata}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        # A queue of this run's own: other deployments on the same Redis never take its tasks.
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "CHURN_WAREHOUSE": f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{warehouse_db}",
    }
    assert tuple(settings) == DEPLOYMENT_SETTINGS
    return settings


class Stopwatch:
    """One progress line per stage, with the seconds since the start and of the stage."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = self.last = time.monotonic()

    def stage(self, text: str) -> None:
        now = time.monotonic()
        print(
            f"[{self.label} {now - self.started:6.1f}s] {text} ({now - self.last:.1f}s)", flush=True
        )
        self.last = now

    def note(self, text: str) -> None:
        print(f"[{self.label} {time.monotonic() - self.started:6.1f}s] {text}", flush=True)


# --- databases -------------------------------------------------------------------------


def _admin():
    import psycopg2

    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres")
    connection.autocommit = True
    return connection


@contextmanager
def temporary_databases(*names: str) -> Iterator[None]:
    """Create the PostgreSQL databases, drop them (forcing sessions off) afterwards."""
    admin = _admin()
    created = []
    try:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
        yield
    finally:
        with admin.cursor() as cur:
            for name in created:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def existing_databases(*names: str) -> list[str]:
    """Those of `names` that exist on the server."""
    rows = _query(
        "postgres", "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (list(names),)
    )
    return sorted(name for (name,) in rows)


def _query(database: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=database) as con:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()


def published_checksums(warehouse_db: str) -> dict[str, tuple[int, str]]:
    """Rows and an order-independent md5 of every published table (not `_publication`,
    which records the run)."""
    tables = _query(
        warehouse_db,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics' "
        "AND table_type = 'BASE TABLE' AND table_name <> '_publication' ORDER BY 1",
    )
    checksums = {}
    for (table,) in tables:
        rows, digest = _query(
            warehouse_db,
            "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') "
            f'FROM (SELECT md5(CAST(t AS text)) AS h FROM analytics."{table}" AS t) AS r',
        )[0]
        checksums[table] = (rows, digest)
    return checksums


# --- processes -------------------------------------------------------------------------


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def processes_with_marker(marker_value: str) -> list[int]:
    """Pids of live processes whose environment carries `CHURN_DEPLOYMENT_ID=marker_value`."""
    needle = f"{MARKER}={marker_value}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue  # gone, or not ours to read
    return found


@dataclass
class Deployment:
    """The processes of one Airflow deployment; stops them all, whatever happens."""

    marker: str
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    swept: list[int] = field(default_factory=list)

    def start(self, name: str, args: list[str], extra: dict[str, str] | None = None) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed by the child's exit)
        self.processes[name] = subprocess.Popen(
            [_airflow(), *args],
            env={**self.env, **(extra or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own: stopped as a whole
        )
        log.close()

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; see {self.log_dir / name}.log"
                )

    def log_text(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self, grace: float = 30.0) -> list[int]:
        """SIGTERM every process group, SIGKILL what is left after `grace` seconds, then
        any process that still carries the marker; returns the pids that survived all that."""
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGKILL)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.swept = processes_with_marker(self.marker)  # escaped their process group
        for pid in self.swept:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while (left := processes_with_marker(self.marker)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass  # the group is gone already


def _wait_for(what: str, ready, deployment: Deployment, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.check_alive()
        if ready():
            return
        time.sleep(1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s; logs in {deployment.log_dir}")


def _api_healthy(port: int) -> bool:
    import requests

    try:
        return requests.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2).ok
    except requests.RequestException:
        return False


# --- one night -------------------------------------------------------------------------


@dataclass
class Night:
    """What one deployment's scheduled night did."""

    executor: str
    marker: str  # the value of CHURN_DEPLOYMENT_ID its processes carried
    databases: tuple[str, str]  # metadata, warehouse (dropped by now)
    run_id: str
    run_type: str
    state: str
    interval: tuple[datetime, datetime]
    task_states: dict[str, str]
    task_hosts: dict[str, str]
    published: dict[str, tuple[int, str]]
    seconds: float
    leftover: list[int]

    def tasks_per_host(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for host in self.task_hosts.values():
            counts[host] = counts.get(host, 0) + 1
        return counts


def _airflow_cli(env: dict[str, str], args: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        done = subprocess.run(
            [_airflow(), *args], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    if done.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}); see {log}")


def run_scheduled_night(
    executor: str,
    bundle: Path,
    workdir: Path,
    workers: tuple[str, ...] = (),
    timeout: float = NIGHT_TIMEOUT,
) -> Night:
    """Deploy Airflow with `executor`, let its scheduler run the one due night of the
    nightly DAG on `bundle`, and return what it did; every process is stopped and the
    run's databases dropped before this returns (or raises)."""
    from churnhouse.config import project_dir
    from churnhouse.runner import dags_folder

    run = uuid.uuid4().hex[:10]
    label = executor.removesuffix("Executor").lower()
    clock = Stopwatch(label)
    metadata_db, warehouse_db = f"churn_airflow_{run}", f"churn_wh_{run}"
    home = workdir / f"{label}-{run}"
    airflow_home, log_dir = home / "airflow", home / "logs"
    airflow_home.mkdir(parents=True)
    log_dir.mkdir()
    api_port = _free_port()
    env = dict(os.environ)
    env.update(deployment_settings(executor, metadata_db, warehouse_db, api_port, f"churn_{run}"))
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "churnhouse.devkit.celery_demo.worker_hostname",
            "CHURN_BUNDLE": str(bundle),
            "CHURN_HOME": str(home / "churn"),
            "CHURN_PROJECT_DIR": str(project_dir()),
            MARKER: run,
        }
    )
    for variable in ("CHURN_ALERTS_CONFIG", WORKER_NAME, "CHURN_CRM_URL", "CHURN_BILLING_URL"):
        env.pop(variable, None)
    started = time.monotonic()
    deployment = Deployment(run, env, log_dir)
    with temporary_databases(metadata_db, warehouse_db):
        clock.stage(f"databases {metadata_db}, {warehouse_db} created; logs in {log_dir}")
        try:
            _airflow_cli(env, ["db", "migrate"], log_dir / "db-migrate.log")
            clock.stage("airflow db migrate done")
            deployment.start("api-server", ["api-server"])
            deployment.start("scheduler", ["scheduler", "--skip-serve-logs"])
            deployment.start("dag-processor", ["dag-processor"])
            for name in workers:
                deployment.start(
                    name,
                    [
                        "celery",
                        "worker",
                        "--celery-hostname",
                        f"{name}@{socket.gethostname()}",
                        "--concurrency",
                        str(WORKER_CONCURRENCY),
                        "--queues",
                        env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
                        "--skip-serve-logs",
                    ],
                    {WORKER_NAME: name},
                )
            clock.stage(f"started {', '.join(deployment.processes)}")
            _wait_for("api-server", lambda: _api_healthy(api_port), deployment, 180)
            for name in workers:
                _wait_for(name, lambda n=name: " ready" in deployment.log_text(n), deployment, 180)
            _wait_for("the DAG", lambda: _dag_serialized(metadata_db), deployment, 300)
            clock.stage("API server healthy, workers ready, DAG parsed")
            _airflow_cli(env, ["dags", "unpause", DAG_ID], log_dir / "unpause.log")
            clock.stage(f"{DAG_ID} unpaused")
            night = _wait_for_night(metadata_db, deployment, clock, timeout)
            published = published_checksums(warehouse_db)
            clock.stage(f"published tables read: {len(published)} tables")
        finally:
            leftover = deployment.stop()
            clock.stage(
                f"stopped {len(deployment.processes)} process groups"
                + (f"; killed {len(deployment.swept)} outside them" if deployment.swept else "")
                + (f"; STILL RUNNING: {leftover}" if leftover else "")
            )
    run_id, run_type, state, interval, task_states, task_hosts = night
    return Night(
        executor=executor,
        marker=run,
        databases=(metadata_db, warehouse_db),
        run_id=run_id,
        run_type=run_type,
        state=state,
        interval=interval,
        task_states=task_states,
        task_hosts=task_hosts,
        published=published,
        seconds=time.monotonic() - started,
        leftover=leftover,
    )


def _dag_serialized(metadata_db: str) -> bool:
    return bool(_query(metadata_db, "SELECT 1 FROM serialized_dag WHERE dag_id = %s", (DAG_ID,)))


def _wait_for_night(metadata_db: str, deployment: Deployment, clock: Stopwatch, timeout: float):
    """Follow the first run the scheduler creates until it ends; one line per task."""
    deadline = time.monotonic() + timeout
    run = None
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        deployment.check_alive()
        runs = _query(
            metadata_db,
            "SELECT run_id, run_type, state, data_interval_start, data_interval_end "
            "FROM dag_run WHERE dag_id = %s ORDER BY id LIMIT 1",
            (DAG_ID,),
        )
        if runs and run is None:
            clock.stage(f"the scheduler created {runs[0][0]} ({runs[0][1]})")
        run = runs[0] if runs else None
        if run:
            tasks = _query(
                metadata_db,
                "SELECT task_id, state, hostname, "
                "coalesce(extract(epoch FROM end_date - start_date), 0) FROM task_instance "
                "WHERE dag_id = %s AND run_id = %s ORDER BY task_id",
                (DAG_ID, run[0]),
            )
            for task_id, state, hostname, seconds in tasks:
                if state != seen.get(task_id) and state in ("success", "failed", "up_for_retry"):
                    clock.note(f"  {task_id:<20} {state:<12} on {hostname} in {seconds:.1f}s")
                seen[task_id] = state
            if run[2] in ("success", "failed"):
                clock.stage(f"night {run[2]}")
                states = {task_id: state for task_id, state, _, _ in tasks}
                hosts = {task_id: host for task_id, _, host, _ in tasks if host}
                return run[0], run[1], run[2], (run[3], run[4]), states, hosts
        time.sleep(2)
    raise TimeoutError(
        f"the night did not end within {timeout:.0f}s (tasks: {seen}); logs in {deployment.log_dir}"
    )


# --- the demo --------------------------------------------------------------------------


def due_interval(now: datetime | None = None) -> tuple[date, date]:
    """The daily interval the scheduler runs when the DAG is unpaused: [yesterday, today)."""
    today = (now or datetime.now(UTC)).date()
    return today - timedelta(days=1), today


def simulate_bundle(out: Path, now: datetime | None = None) -> Path:
    """A small company whose history runs to the end of this month (so the due interval,
    yesterday, is inside it)."""
    from churnhouse.devkit.simulator import simulate

    today = (now or datetime.now(UTC)).date()
    month = today.year * 12 + today.month - 1 - (SIMULATION["months"] - 1)
    start = f"{month // 12:04d}-{month % 12 + 1:02d}"
    simulate(out=out, start=start, **SIMULATION)
    return out


@dataclass
class DemoResult:
    celery: Night
    local: Night

    def tasks_per_worker(self) -> dict[str, int]:
        counts = self.celery.tasks_per_host()
        return {name: counts.get(name, 0) for name in WORKERS}

    def differing_tables(self) -> list[str]:
        names = sorted(set(self.celery.published) | set(self.local.published))
        return [n for n in names if self.celery.published.get(n) != self.local.published.get(n)]

    def problems(self) -> list[str]:
        found = []
        for night in (self.celery, self.local):
            if night.state != "success":
                failed = sorted(t for t, s in night.task_states.items() if s != "success")
                found.append(f"{night.executor} night {night.state} (tasks {failed})")
            if night.leftover:
                found.append(f"{night.executor}: processes left running {night.leftover}")
        idle = [name for name, n in self.tasks_per_worker().items() if n == 0]
        if idle:
            found.append(f"ran nothing: {', '.join(idle)}")
        if self.celery.interval != self.local.interval:
            found.append(f"different intervals {self.celery.interval} / {self.local.interval}")
        if not self.celery.published:
            found.append("nothing published")
        if differing := self.differing_tables():
            found.append(f"published tables differ: {', '.join(differing)}")
        return found

    def tasks_line(self) -> str:
        return "tasks per worker: " + ", ".join(
            f"{name}={count}" for name, count in self.tasks_per_worker().items()
        )


def run_demo(workdir: Path) -> DemoResult:
    """Simulate the company, run its night on Celery, then on LocalExecutor."""
    clock = Stopwatch("demo")
    bundle = simulate_bundle(workdir / "bundle")
    clock.stage(f"simulated company in {bundle}")
    celery = run_scheduled_night("CeleryExecutor", bundle, workdir, WORKERS)
    clock.stage(f"Celery night {celery.state}")
    local = run_scheduled_night("LocalExecutor", bundle, workdir)
    clock.stage(f"LocalExecutor night {local.state}")
    return DemoResult(celery, local)


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    import tempfile

    from churnhouse.config import churn_home

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    base = churn_home() / "celery-demo"
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    try:
        result = run_demo(workdir)
    except (Exception, KeyboardInterrupt) as error:
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
        print(f"celery demo FAILED: {reason}", file=sys.stderr, flush=True)
        print("tasks per worker: " + ", ".join(f"{name}=0" for name in WORKERS))
        return 1
    for night in (result.celery, result.local):
        start, end = night.interval
        print(
            f"{night.executor}: {night.run_id} ({night.run_type}) [{start:%Y-%m-%d %H:%M}, "
            f"{end:%Y-%m-%d %H:%M}) {night.state} in {night.seconds:.0f}s, "
            f"{len(night.published)} published tables"
        )
    same = not result.differing_tables() and result.celery.published
    print(f"published tables equal to the LocalExecutor night: {'yes' if same else 'NO'}")
    problems = result.problems()
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(result.tasks_line(), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
