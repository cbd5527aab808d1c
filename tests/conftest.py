"""Shared fixtures: real database servers, never mocks.

A server that is not reachable skips its tests with a one-line reason on a
developer's machine, and fails them when CI is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from servers import MARIADB_HOST, MARIADB_PORT, PG_HOST, PG_PORT, require_server


def pytest_collection_modifyitems(items) -> None:
    """Mark every test that needs a server: `-m "not postgres"` leaves them all out.

    A test needs PostgreSQL (MariaDB) when it asks for `postgres_url` (`mariadb_url`) or
    runs with a parameter of that name (the fixtures that pick a backend by parameter).
    """
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        values = {str(value) for value in callspec.params.values()} if callspec else set()
        for server in ("postgres", "mariadb"):
            if f"{server}_url" in names or server in values:
                item.add_marker(server)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def second_postgres_url() -> Iterator[str]:
    """Another fresh database, for tests that compare two warehouses."""
    with fresh_postgres_database() as url:
        yield url


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg2

    name = f"churn_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path, monkeypatch):
    """An empty warehouse on each engine: a DuckDB file, then a fresh PostgreSQL database."""
    from churnhouse.warehouse import open_warehouse

    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    if request.param == "duckdb":
        return open_warehouse(str(tmp_path / "warehouse.duckdb"))
    return open_warehouse(request.getfixturevalue("postgres_url"))


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for one test, dropped afterwards."""
    require_server("MariaDB", MARIADB_HOST, MARIADB_PORT)
    import pymysql

    name = f"churn_test_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}?charset=utf8mb4"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


DUCKDB_1X = "1.5.6"


@pytest.fixture(scope="session")
def duckdb_1x_python(request) -> str:
    """A Python with DuckDB 1.x (what BI tools' drivers read), in its own virtualenv.

    Built once from the package registry into pytest's cache folder and reused. Without
    the registry it skips (fails when CI is set).
    """
    import subprocess
    import sys
    from pathlib import Path

    venv = Path(request.config.cache.mkdir(f"duckdb-{DUCKDB_1X}-venv"))
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import duckdb; print(duckdb.__version__)"]
    if (
        python.exists()
        and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == DUCKDB_1X
    ):
        return str(python)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    uv = Path(sys.executable).with_name("uv")
    install = (
        [str(uv), "pip", "install", "--quiet", "--python", str(python)]
        if uv.exists()
        else [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    )
    done = subprocess.run([*install, f"duckdb=={DUCKDB_1X}"], capture_output=True, text=True)
    if done.returncode != 0:
        message = f"cannot install duckdb=={DUCKDB_1X} into {venv}: {done.stderr.strip()[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(python)


CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """The Debian chromium (installed by scripts/ensure-services.sh), headless, via Playwright.

    Missing chromium skips with one line on a developer's machine and fails when CI is set.
    """
    import shutil

    executable = os.environ.get("CHURN_CHROMIUM") or shutil.which("chromium")
    if not executable:
        message = "chromium is not installed (apt-get install chromium; make services does it)"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: a missing browser is a failure)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
