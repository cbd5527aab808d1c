"""docker/compose.yaml: the process layout and the Airflow 3 settings of the Celery test.

No Docker engine here: the file is read as YAML and held to the settings that
`churnhouse.devkit.celery_demo` gives every process of the deployment it runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from churnhouse.devkit.celery_demo import DEPLOYMENT_SETTINGS, WORKERS

DOCKER = Path(__file__).resolve().parents[2] / "docker"
AIRFLOW_SERVICES = (
    "airflow-init",
    "api-server",
    "scheduler",
    "dag-processor",
    *WORKERS,
)
SECRET_SETTINGS = (
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
)
VARIABLE = re.compile(r"\$\{(\w+)")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


def test_the_processes_are_those_the_celery_test_starts(compose):
    assert set(compose["services"]) == {"postgres", "redis", *AIRFLOW_SERVICES}
    commands = {name: compose["services"][name]["command"] for name in AIRFLOW_SERVICES}
    assert commands["airflow-init"] == "airflow db migrate"
    assert commands["api-server"] == "airflow api-server"
    assert commands["scheduler"] == "airflow scheduler"
    assert commands["dag-processor"] == "airflow dag-processor"


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_every_airflow_process_has_exactly_the_deployment_settings(compose, service):
    environment = compose["services"][service]["environment"]
    assert sorted(environment) == sorted(DEPLOYMENT_SETTINGS)
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_secrets_come_from_the_env_file_never_from_the_compose_file(compose):
    environment = compose["services"]["scheduler"]["environment"]
    for setting in SECRET_SETTINGS:
        assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", environment[setting]), setting
    for setting in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "CHURN_WAREHOUSE"):
        assert "${CHURN_PG_PASSWORD" in environment[setting], setting
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    example = (DOCKER / ".env.example").read_text(encoding="utf-8")
    declared = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line}
    assert set(VARIABLE.findall(text)) <= declared
    assert not [line for line in example.splitlines() if re.match(r"^\w+=\S", line)], (
        "the example holds no values"
    )


def test_tasks_reach_the_api_server_and_the_workers_take_the_default_queue(compose):
    services = compose["services"]
    environment = services["scheduler"]["environment"]
    port = environment["AIRFLOW__API__PORT"]
    assert environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        f"http://api-server:{port}/execution/"
    )
    queue = environment["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    hostnames = [services[name]["hostname"] for name in WORKERS]
    assert hostnames == list(WORKERS), "task instances record the container's hostname"
    for name in WORKERS:
        command = services[name]["command"].split()
        assert command[:3] == ["airflow", "celery", "worker"]
        assert command[command.index("--queues") + 1] == queue
        assert command[command.index("--celery-hostname") + 1].startswith(f"{name}@")
