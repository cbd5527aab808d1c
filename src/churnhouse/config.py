"""Settings: where the sources, the warehouse and the project's folders are.

Read at call time (inside tasks), never at import: environment variables
first, then the Airflow connections named in docs/sources.md. Secrets are
returned to the caller only; nothing here logs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnhouse.errors import PermanentError

DEFAULT_HOME = Path(".churnhouse")

MEMORY_LIMIT_SETTING = "CHURN_DUCKDB_MEMORY_LIMIT"
# Measured at 10,000 customers x 24 months (12.4M events), first load of the events:
# with 1.2GB it passes and the process peaks at 1,515 MiB RSS; with 1.5GB the bench's
# company (full build and two nights in one process) peaked at 2,023 MiB; with 4GB it
# took 4.4 GiB; with 1GB the load fails for want of memory (it holds more than it spills).
DEFAULT_MEMORY_LIMIT = "1.25GB"


def duckdb_memory_limit() -> str:
    """`CHURN_DUCKDB_MEMORY_LIMIT` (default 1.25GB): DuckDB spills beyond it to `<file>.tmp/`.

    Without a limit DuckDB may take 80% of the machine's memory for one night's load.
    """
    return os.environ.get(MEMORY_LIMIT_SETTING) or DEFAULT_MEMORY_LIMIT


@dataclass(frozen=True)
class SourceSettings:
    """Where each source is read from (and the billing API key)."""

    crm_url: str
    billing_url: str  # http(s) base URL of the API, or a path to the export folder
    events_uri: str
    surveys_uri: str
    fx_rates_uri: str | None = None
    billing_api_key: str | None = field(default=None, repr=False)

    @property
    def billing_is_api(self) -> bool:
        return self.billing_url.startswith(("http://", "https://"))


def churn_home() -> Path:
    """Folder for local state (default warehouse, Airflow home, Data Docs)."""
    return Path(os.environ.get("CHURN_HOME", DEFAULT_HOME)).resolve()


def project_dir() -> Path:
    """The churnhouse project folder holding `dags/`, `dbt_project/` and `expectations/`.

    `CHURN_PROJECT_DIR`; by default the clone this package is installed from
    (`pip install -e .`), which is how `make` installs it.
    """
    configured = os.environ.get("CHURN_PROJECT_DIR")
    folder = Path(configured).resolve() if configured else Path(__file__).resolve().parents[2]
    if not (folder / "dbt_project" / "dbt_project.yml").is_file():
        raise PermanentError(
            f"{folder} is not a churnhouse project folder (no dbt_project/dbt_project.yml): "
            "set CHURN_PROJECT_DIR to your clone"
        )
    return folder


def dags_dir() -> Path:
    """`CHURN_DAGS_DIR`, default `<project>/dags`."""
    return _folder("CHURN_DAGS_DIR", "dags")


def dbt_project_dir() -> Path:
    """`CHURN_DBT_PROJECT_DIR`, default `<project>/dbt_project`."""
    return _folder("CHURN_DBT_PROJECT_DIR", "dbt_project")


def expectations_dir() -> Path:
    """`CHURN_EXPECTATIONS_DIR`, default `<project>/expectations`."""
    return _folder("CHURN_EXPECTATIONS_DIR", "expectations")


def _folder(setting: str, default: str) -> Path:
    configured = os.environ.get(setting)
    folder = Path(configured).resolve() if configured else project_dir() / default
    if not folder.is_dir():
        raise PermanentError(f"{setting}: folder {folder} does not exist")
    return folder


def warehouse_url() -> str:
    """`CHURN_WAREHOUSE`: a DuckDB file path (default) or a PostgreSQL URL."""
    configured = os.environ.get("CHURN_WAREHOUSE")
    if configured:
        return configured
    return str(churn_home() / "warehouse.duckdb")


def sources_for_bundle(bundle: Path) -> SourceSettings:
    """The locations inside one bundle folder, as the simulator writes it."""
    bundle = bundle.resolve()
    if not bundle.is_dir():
        raise PermanentError(f"bundle folder {bundle} does not exist (--bundle / CHURN_BUNDLE)")
    return SourceSettings(
        crm_url=f"sqlite:///{bundle / 'crm.sqlite'}",
        billing_url=str(bundle / "billing"),
        events_uri=str(bundle / "events"),
        surveys_uri=str(bundle / "surveys"),
        fx_rates_uri=str(bundle / "fx_rates.csv"),
    )


def _airflow_connection(conn_id: str):
    try:
        from airflow.sdk import Connection

        return Connection.get(conn_id)
    except Exception:  # no Airflow context, or the connection is not defined
        return None


def _required(name: str, value: str | None) -> str:
    if not value:
        raise PermanentError(
            f"setting {name} is not set (environment variable or Airflow connection)"
        )
    return value


def sources_from_settings() -> SourceSettings:
    """Sources from `CHURN_*` env vars, falling back to Airflow connections."""
    env = os.environ
    if env.get("CHURN_BUNDLE"):
        return sources_for_bundle(Path(env["CHURN_BUNDLE"]))

    crm_url = env.get("CHURN_CRM_URL")
    if not crm_url and (conn := _airflow_connection("churn_crm")):
        crm_url = conn.get_uri()

    billing_url = env.get("CHURN_BILLING_URL")
    api_key = env.get("CHURN_BILLING_API_KEY")
    if not billing_url and (conn := _airflow_connection("churn_billing")):
        billing_url = conn.host if "://" in (conn.host or "") else f"https://{conn.host}"
        api_key = api_key or conn.password

    return SourceSettings(
        crm_url=_required("CHURN_CRM_URL", crm_url),
        billing_url=_required("CHURN_BILLING_URL", billing_url),
        events_uri=_required("CHURN_EVENTS_URI", env.get("CHURN_EVENTS_URI")),
        surveys_uri=_required("CHURN_SURVEYS_URI", env.get("CHURN_SURVEYS_URI")),
        fx_rates_uri=env.get("CHURN_FX_RATES_URI"),
        billing_api_key=api_key,
    )


@contextmanager
def scratch_duckdb() -> Iterator[Any]:
    """An in-memory DuckDB within the warehouse memory limit, spilling to a temp folder."""
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory(prefix="churnhouse-scratch-") as spill:
        connection = duckdb.connect(
            config={"memory_limit": duckdb_memory_limit(), "temp_directory": spill}
        )
        try:
            yield connection
        finally:
            connection.close()
