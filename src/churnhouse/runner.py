"""Run the nightly DAG for one day through Airflow (`airflow dags test`), for any bundle.

`churnhouse run --bundle DIR --date D` and `make demo` come through here: the
same DAG file and the same task code as a scheduled night, in a private
Airflow home under `CHURN_HOME`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from churnhouse.config import churn_home, dags_dir, project_dir

DAG_ID = "churn_nightly"
_PROGRESS_MARKERS = ("ERROR", "Error", "Failed", "failed")
_TASK_EDGE = re.compile(
    r"^(?P<at>\S+) .*\[DAG TEST\] (?P<edge>starting|end task) task_id=(?P<task>\w+)"
)
_GATE_LINE = re.compile(r"gate.*: (?P<checks>\d+) checks, (?P<outcome>\w+)")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT")


class TaskProgress:
    """Turns `airflow dags test` output into one line per task: what it did, with counts, and
    its seconds. The tasks print their results as plain lines (Airflow's own lines start
    with a timestamp); a gate's suites are summed into one line."""

    def __init__(self) -> None:
        self.task: str | None = None
        self.started: datetime | None = None
        self.results: list[str] = []

    def feed(self, line: str) -> str | None:
        """The line to show for this line of output, if any."""
        if edge := _TASK_EDGE.match(line):
            at = datetime.fromisoformat(edge["at"])
            if edge["edge"] == "starting":
                self.task, self.started, self.results = edge["task"], at, []
                return None
            seconds = (at - self.started).total_seconds() if self.started else 0.0
            summary = self._summary()
            self.task, self.started = None, None
            return f"{edge['task']:<16} {seconds:6.1f}s  {summary}"
        if any(marker in line for marker in _PROGRESS_MARKERS) and "[info" not in line:
            return line.rstrip()[:300]
        if self.task and line.strip() and not _LOG_LINE.match(line):
            self.results.append(line.strip())
        return None

    def _summary(self) -> str:
        # Library noise (progress bars, bracketed log records) is not a task's result.
        shown = [line for line in self.results if not line.startswith(("[", "Calculating"))]
        gates = [_GATE_LINE.search(line) for line in shown]
        if gates and all(gates):
            failed = sum(gate["outcome"] != "ok" for gate in gates)
            checks = sum(int(gate["checks"]) for gate in gates)
            verdict = "all passed" if not failed else f"{failed} FAILED"
            return f"{len(gates)} suites, {checks} checks, {verdict}"
        return "; ".join(line.removeprefix("dbt ") for line in shown)[:400] or "done"


def dags_folder() -> Path:
    """The folder holding the nightly DAG file (`CHURN_DAGS_DIR`, default `<project>/dags`)."""
    folder = dags_dir()
    if not (folder / f"{DAG_ID}.py").is_file():
        raise FileNotFoundError(f"cannot find {DAG_ID}.py in {folder} (CHURN_DAGS_DIR)")
    return folder


def airflow_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the Airflow CLI: private home, our DAGs, quiet and offline.

    The Airflow home is `CHURN_AIRFLOW_HOME`, else `CHURN_HOME/airflow`.
    """
    home = Path(os.environ.get("CHURN_AIRFLOW_HOME") or churn_home() / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "GX_ANALYTICS_ENABLED": "false",
            "CHURN_HOME": str(churn_home()),
            "CHURN_PROJECT_DIR": str(project_dir()),
        }
    )
    env.update(extra or {})
    return env


def _airflow(args: list[str], env: dict[str, str], log_file: Path) -> int:
    command = [str(Path(sys.executable).with_name("airflow")), *args]
    with open(log_file, "a", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        progress = TaskProgress()
        for line in process.stdout:
            log.write(line)
            if shown := progress.feed(line):
                print("  " + shown, flush=True)
        return process.wait()


def ensure_airflow_db(env: dict[str, str], log_file: Path) -> None:
    """Create the Airflow metadata database once (a stamp file marks it done)."""
    stamp = Path(env["AIRFLOW_HOME"]) / ".migrated"
    if stamp.exists():
        return
    print(
        f"first run in {env['AIRFLOW_HOME']}: creating Airflow's metadata database "
        "(airflow db migrate, about 30 s, once)",
        flush=True,
    )
    started = time.monotonic()
    if _airflow(["db", "migrate"], env, log_file) != 0:
        raise RuntimeError(f"airflow db migrate failed; see {log_file}")
    stamp.touch()
    print(f"Airflow database ready in {time.monotonic() - started:.1f}s", flush=True)


def run_day(day: date, extra_env: dict[str, str] | None = None) -> int:
    """Run the DAG for the interval [day 00:00, day+1 00:00) UTC; returns Airflow's exit code."""
    env = airflow_environment(extra_env)
    log_dir = churn_home() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{DAG_ID}_{day.isoformat()}.log"
    ensure_airflow_db(env, log_file)
    # A manual run at D+1 00:00 gets the interval that just closed: [D, D+1).
    run_after = (day + timedelta(days=1)).isoformat()
    started = time.monotonic()
    print(
        f"airflow dags test {DAG_ID} {run_after}  (interval {day} .. {run_after}; log {log_file})"
    )
    code = _airflow(["dags", "test", DAG_ID, run_after], env, log_file)
    outcome = "succeeded" if code == 0 else f"FAILED (exit {code}; see {log_file})"
    print(f"run for {day} {outcome} in {time.monotonic() - started:.1f}s", flush=True)
    return code


def backfill(first: date, last: date, extra_env: dict[str, str] | None = None) -> int:
    """Run the nights `first`..`last` in order; stop at the first that fails.

    The days done are kept in `CHURN_HOME/backfill/<first>_<last>.done`, so running
    the same command again resumes at the night that failed.
    """
    done_file = churn_home() / "backfill" / f"{first}_{last}.done"
    done_file.parent.mkdir(parents=True, exist_ok=True)
    done = set(done_file.read_text().split()) if done_file.exists() else set()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    for day in days:
        if day.isoformat() in done:
            print(f"backfill: {day} already done", flush=True)
            continue
        code = run_day(day, extra_env)
        if code != 0:
            print(
                f"backfill stopped at {day} (exit {code}); run the same command again to resume",
                flush=True,
            )
            return code
        with open(done_file, "a", encoding="utf-8") as file:
            file.write(f"{day.isoformat()}\n")
    print(f"backfill {first} .. {last}: {len(days)} nights done", flush=True)
    return 0
