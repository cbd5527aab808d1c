"""`churnhouse metrics ...`: MetricFlow queries of the metrics defined once in dbt.

The semantic models and metrics live in `dbt_project/models/semantic/` (logo churn
rate, gross revenue churn rate, NRR, GRR, MRR, activation rate, NPS, deflection
rate, saved MRR and their building blocks). This command parses the project
against the published tables and hands its arguments to MetricFlow's `mf query`,
e.g. `churnhouse metrics --metrics nrr,mrr --group-by metric_time__month`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from churnhouse.warehouse import open_warehouse


def query_metrics(warehouse_url: str, mf_args: list[str]) -> int:
    """Run `mf query MF_ARGS` on the published tables; returns mf's exit code."""
    from churnhouse.transform import semantic_project

    open_warehouse(warehouse_url).read_published("SELECT 1")  # raises if nothing is published
    with semantic_project(warehouse_url) as project:
        env = dict(os.environ, DBT_PROFILES_DIR=str(project), DBT_PROJECT_DIR=str(project))
        command = [str(Path(sys.executable).with_name("mf")), "query", *mf_args]
        return subprocess.run(command, env=env, cwd=project).returncode
