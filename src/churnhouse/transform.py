"""dbt from Python: seeds, the CRM snapshot, the models and their tests, as of a moment.

`build()` runs one `dbt build` in-process (`dbt.cli.main.dbtRunner`): seeds (the
reason taxonomy, free-mail domains, zero-decimal currencies), the CRM accounts
snapshot and every model with its data tests, in DAG order. One invocation
means the project is parsed once per night. The target folder persists per
warehouse (beside a DuckDB file: `<file>.dbt/`), so dbt's partial parsing can reuse it
and the last night's run results and log stay there to read (not its
`manifest.json`: writing it twice cost a night more than half a second; `dbt parse`
or `churnhouse docs` writes one).

The nightly build runs the incremental models incrementally (only the days and
users touched by new loads) and leaves alone what cannot have changed
(`KEPT_WHEN_UNCHANGED`: the seeds, the staging views, the time spine, while their
files are the ones the last whole build here used); `full_refresh=True` rebuilds all. dbt's
unit tests check SQL logic on fixed inputs, not the night's data: the night
leaves them out and the test suite runs them (`unit_tests=True`).

The target follows the warehouse URL: a path is the DuckDB file (held under the
project's writer lock while dbt runs, one thread), `postgresql://...` is
PostgreSQL. Connection settings reach `dbt_project/profiles.yml` through
environment variables set for the duration of the run only; the password is
never printed or logged.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from churnhouse.config import churn_home, dbt_project_dir
from churnhouse.contracts import AUDIT_SCHEMA, PUBLISHED_SCHEMA, naive_utc
from churnhouse.errors import PermanentError
from churnhouse.warehouse import Warehouse, checked_identifier, open_warehouse

# dbt reads its settings from the process environment: one build at a time per process.
_BUILD_LOCK = threading.Lock()
# The end of the run's data interval, for the dbt macro `as_of()` (read when models run).
AS_OF_SETTING = "CHURN_AS_OF"

_FAILED = {"error", "fail", "runtime error"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DbtBuildError(PermanentError):
    """dbt ran and nodes failed (a model's SQL, a data test, a unit test, the FX check).

    The same inputs fail the same way, so retrying does not help. `failures` holds
    (node name, message) for each failed node.
    """

    def __init__(self, stage: str, failures: list[tuple[str, str]], log_dir: Path | None):
        self.stage = stage
        self.failures = failures
        self.log_dir = log_dir
        lines = "\n".join(f"  - {name}: {message}" for name, message in failures)
        where = f"\n(dbt's log: {log_dir / 'dbt.log'})" if log_dir else ""
        super().__init__(f"dbt {stage} failed on {len(failures)} node(s):\n{lines}{where}")


class DbtInvocationError(RuntimeError):
    """dbt could not run at all (project parse error, unreachable database, ...)."""


@dataclass(frozen=True)
class StageResult:
    """One dbt invocation: how many nodes of each resource type ran, and how long it took."""

    stage: str
    counts: dict[str, int]
    seconds: float

    def describe(self) -> str:
        counts = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in self.counts.items())
        return f"dbt {self.stage}: {counts or 'nothing to do'} in {self.seconds:.1f}s"


@dataclass
class BuildResult:
    """What `build()` did: the target, the as_of it reported to, each stage."""

    target: str
    as_of: datetime
    marts_schema: str
    stages: list[StageResult] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        stages = "; ".join(stage.describe() for stage in self.stages)
        return (
            f"dbt on {self.target} as of {self.as_of.isoformat()} into {self.marts_schema}: "
            f"{stages} ({self.seconds:.1f}s)"
        )


def build(
    warehouse_url: str,
    as_of: datetime,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    marts_schema: str = AUDIT_SCHEMA,
    unit_tests: bool = False,
) -> BuildResult:
    """Seed, snapshot and build the dbt project on the warehouse, reporting as of `as_of`.

    `as_of` is the end of the run's data interval (naive = UTC). The marts land in
    `marts_schema` (the write-audit-publish audit schema by default; `publish()`
    moves them to `analytics`). `select` narrows the models (dbt selection syntax;
    seeds and the snapshot always run); `full_refresh` rebuilds the incremental
    models from scratch; `unit_tests` adds dbt's unit tests. Raises DbtBuildError
    naming each failed node.
    """
    started = time.monotonic()
    as_of_utc = naive_utc(as_of)
    warehouse = open_warehouse(warehouse_url)
    result = BuildResult(warehouse.kind, as_of_utc, checked_identifier(marts_schema))
    # as_of goes in the environment, not in --vars: dbt parses the whole project again
    # whenever the vars differ from the last parse, and as_of differs every night.
    vars_yaml = f"{{marts_schema: '{marts_schema}'}}"
    settings = {
        AS_OF_SETTING: as_of_utc.isoformat(sep=" "),
        SHARED_CODE_SETTING: files_fingerprint(SHARED_CODE),
    }
    always = "resource_type:seed +resource_type:snapshot"
    selection = ["--select", f"{always} {select}"] if select else []
    work_dir = dbt_work_dir(warehouse)
    fingerprints = {nodes.name: nodes.fingerprint() for nodes in KEPT_WHEN_UNCHANGED}
    kept = (
        []
        if (full_refresh or select)
        else kept_in_place(warehouse, work_dir, marts_schema, fingerprints)
    )
    excluded = [
        *([] if unit_tests else ["resource_type:unit_test"]),
        *(nodes.selector for nodes in kept),
    ]
    args = [
        "build",
        *selection,
        *(["--exclude", *excluded] if excluded else []),
        # The staging views' data tests still run: they check raw data, which did change.
        *(["--indirect-selection", "empty"] if kept else []),
        "--vars",
        vars_yaml,
        *(["--full-refresh"] if full_refresh else []),
    ]
    with _dbt_session(warehouse, settings):
        stage_result = _invoke("build", args, work_dir, manifest=False)
    if not select:  # everything was built (or kept): from these very files
        for nodes in KEPT_WHEN_UNCHANGED:
            (work_dir / nodes.state_file).write_text(fingerprints[nodes.name])
    note = "".join(f" ({nodes.name} unchanged, kept)" for nodes in kept)
    print(stage_result.describe() + note, flush=True)
    result.stages.append(stage_result)
    result.seconds = time.monotonic() - started
    return result


@dataclass(frozen=True)
class KeptNodes:
    """Nodes a night does not build again (tables and views that did not change): while
    the files they are made from are the ones the last build that succeeded in this dbt
    folder used, and every relation they make is still in the warehouse."""

    name: str
    selector: str  # dbt's selection of the nodes
    state_file: str  # in the dbt folder: the files' fingerprint after that build
    sources: tuple[str, ...]  # globs under the project the nodes are made from
    relations: str  # glob under the project: one relation per file, named by its stem
    schema: str  # `{marts_schema}`: the build's
    relation_type: str

    def fingerprint(self) -> str:
        return files_fingerprint(self.sources)

    def in_place(
        self, warehouse: Warehouse, work_dir: Path, marts_schema: str, fingerprint: str
    ) -> bool:
        """`fingerprint`: this build's, of the files as they are now."""
        state = work_dir / self.state_file
        if not state.is_file() or state.read_text().strip() != fingerprint:
            return False
        wanted = {path.stem for path in dbt_project_dir().glob(self.relations)}
        with warehouse.transaction() as tx:
            present = tx.fetchall(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = ? AND table_type = ?",
                [self.schema.format(marts_schema=marts_schema), self.relation_type],
            )
        return wanted <= {name for (name,) in present}


def files_fingerprint(patterns: tuple[str, ...]) -> str:
    """sha256 over the project's files matching `patterns` and the dbt versions that turn
    them into SQL."""
    from importlib.metadata import PackageNotFoundError, version

    project = dbt_project_dir()
    digest = hashlib.sha256()
    for package in ("dbt-core", "dbt-duckdb", "dbt-postgres"):
        try:
            digest.update(f"{package}=={version(package)}\0".encode())
        except PackageNotFoundError:
            pass
    paths = {path for pattern in patterns for path in project.glob(pattern)}
    for path in sorted(paths):
        if path.is_file():
            digest.update(path.relative_to(project).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


# What the per-customer models mix into what they record besides their own file
# (macros/customer_incremental.sql): a changed macro or var default computes everyone again.
SHARED_CODE_SETTING = "CHURN_DBT_SHARED_CODE"
SHARED_CODE = ("dbt_project.yml", "macros/**/*")


KEPT_WHEN_UNCHANGED = (
    # The reason taxonomy, free-mail domains, zero-decimal currencies, ...: the tables
    # and their tests (the same files give the same result).
    KeptNodes(
        "seeds",
        "path:seeds",
        "seeds.sha256",
        ("dbt_project.yml", "seeds/**/*"),
        "seeds/*.csv",
        "seeds",
        "BASE TABLE",
    ),
    # The staging views: their SQL names raw tables and holds no as_of (views that do,
    # like the health signals, are intermediate and made every night).
    KeptNodes(
        "staging views",
        "path:models/staging,config.materialized:view",
        "staging-views.sha256",
        ("dbt_project.yml", "models/staging/**/*", "macros/**/*"),
        "models/staging/**/*.sql",
        "staging",
        "VIEW",
    ),
    # MetricFlow's time spine: a fixed range of days, published with the marts.
    KeptNodes(
        "time spine",
        "path:models/semantic",
        "time-spine.sha256",
        ("dbt_project.yml", "models/semantic/**/*", "macros/**/*"),
        "models/semantic/*.sql",
        "{marts_schema}",
        "BASE TABLE",
    ),
)


def kept_in_place(
    warehouse: Warehouse, work_dir: Path, marts_schema: str, fingerprints: dict[str, str]
) -> list[KeptNodes]:
    """The kept nodes whose files did not change and whose relations are all there."""
    return [
        nodes
        for nodes in KEPT_WHEN_UNCHANGED
        if nodes.in_place(warehouse, work_dir, marts_schema, fingerprints[nodes.name])
    ]


def full_refresh_requested() -> bool:
    """`CHURN_DBT_FULL_REFRESH` (`churnhouse run --full-refresh`): rebuild the incremental
    models from scratch tonight (after a change to their SQL, or to repair them)."""
    return os.environ.get("CHURN_DBT_FULL_REFRESH", "").lower() in ("1", "true", "yes")


def dbt_work_dir(warehouse: Warehouse) -> Path:
    """The warehouse's own dbt folder (`target/`, `logs/`), kept between nights: beside a
    DuckDB file, else `CHURN_HOME/dbt/postgres-<key>` (the key never holds the password)."""
    path = getattr(warehouse, "path", None)
    if path is not None:
        folder = Path(path).with_name(Path(path).name + ".dbt")
    else:
        where = re.sub(r"//[^@/]*@", "//", warehouse.url)
        key = hashlib.sha256(where.encode()).hexdigest()[:12]
        folder = churn_home() / "dbt" / f"{warehouse.kind}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def docs(warehouse_url: str, out_dir: Path) -> Path:
    """dbt's docs as one self-contained page, cataloged from the published marts.

    `dbt docs generate --static` writes `out_dir/static_index.html` (manifest and
    catalog inside, so it opens from `file://`); returns its path. On DuckDB the
    catalog (column types) is read from a copy of the published file, which holds
    the `analytics` schema the docs describe (the working file does not, once
    marts are published); before the first publish, from the working file.
    """
    warehouse = open_warehouse(warehouse_url)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with warehouse.published_for_dbt() as published, _dbt_session(published):
        args = ["docs", "generate", "--static", "--vars", f"{{marts_schema: {PUBLISHED_SCHEMA}}}"]
        _invoke("docs generate", args, out_dir, target_dir=out_dir)
    return out_dir / "static_index.html"


@contextmanager
def semantic_project(warehouse_url: str) -> Iterator[Path]:
    """The dbt project parsed against the published tables, for MetricFlow (`mf`).

    `dbt parse` writes `target/semantic_manifest.json` in the project (where `mf`
    reads it); while the context is open, dbt's connection settings are in the
    environment, pointing at the published tables (on DuckDB, a copy of the
    published file). Yields the project folder.
    """
    project = dbt_project_dir()
    warehouse = open_warehouse(warehouse_url)
    with warehouse.published_for_dbt() as published, _dbt_session(published):
        with tempfile.TemporaryDirectory(prefix="churnhouse-dbt-") as work_dir:
            args = ["parse", "--vars", f"{{marts_schema: {PUBLISHED_SCHEMA}}}"]
            _invoke("parse", args, Path(work_dir), target_dir=project / "target")
        yield project


@contextmanager
def _dbt_session(warehouse: Warehouse, settings: dict[str, str] | None = None) -> Iterator[None]:
    """One dbt use of the warehouse: this process's only one, its settings (and
    `settings`), the warehouse held against other writers, and whatever dbt keeps open
    released afterwards."""
    with _BUILD_LOCK, _dbt_environment(warehouse, settings or {}), warehouse.exclusive():
        try:
            yield
        finally:
            warehouse.release_after_dbt()


def _invoke(
    stage: str,
    args: list[str],
    work_dir: Path,
    target_dir: Path | None = None,
    *,
    manifest: bool = True,
) -> StageResult:
    """One dbt command in this process. `manifest=False`: dbt does not write
    `manifest.json` (twice, with the semantic manifest: ~0.5-0.8 s of a night at
    10,000 x 24); `run_results.json` is written all the same."""
    from dbt.cli.main import dbtRunner

    project = str(dbt_project_dir())
    target = target_dir or work_dir / "target"
    started = time.monotonic()
    outcome = dbtRunner().invoke(
        [
            *args,
            *([] if manifest else ["--no-write-json"]),
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--target-path",
            str(target),
            "--log-path",
            str(work_dir / "logs"),
            "--quiet",
            "--no-use-colors",  # task logs and error messages are read as plain text
        ]
    )
    seconds = time.monotonic() - started
    if not manifest and hasattr(outcome.result, "write"):
        outcome.result.write(str(target / "run_results.json"))
    if outcome.exception is not None and outcome.result is None:
        raise DbtInvocationError(
            f"dbt {stage} could not run: {outcome.exception} (log: {work_dir / 'logs'})"
        ) from outcome.exception
    nodes = list(getattr(outcome.result, "results", None) or [])
    failures = [
        (result.node.name, _ANSI.sub("", result.message or str(result.status)).strip())
        for result in nodes
        if str(result.status) in _FAILED
    ]
    if failures or not outcome.success:
        raise DbtBuildError(stage, failures or [(stage, str(outcome.exception))], work_dir / "logs")
    counts = Counter(str(result.node.resource_type) for result in nodes)
    return StageResult(stage, dict(sorted(counts.items())), seconds)


@contextmanager
def _dbt_environment(warehouse: Warehouse, extra: dict[str, str]) -> Iterator[None]:
    """The settings profiles.yml and the models read, set for the run only, then restored."""
    settings = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", **warehouse.dbt_settings(), **extra}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
