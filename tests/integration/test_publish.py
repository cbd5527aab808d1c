"""Write-audit-publish: readers see all of one night or all of the next, never a mix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime

import pytest

from churnhouse.publish import publish
from churnhouse.warehouse import Warehouse, open_warehouse

AS_OF = datetime(2024, 4, 1)
MARTS = ("churn_monthly", "churn_events", "dim_customers")


def build_audit(warehouse: Warehouse, run_id: str, rows: int = 2000) -> None:
    """Stand-in for dbt: the night's marts in the audit schema, each stamped with its run."""
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA IF NOT EXISTS analytics_audit")
        for mart in MARTS:
            tx.execute(f"DROP TABLE IF EXISTS analytics_audit.{mart}")
            tx.execute(
                f"CREATE TABLE analytics_audit.{mart} AS "
                f"SELECT CAST(? AS TEXT) AS run_id, g AS n FROM generate_series(1, {rows}) AS s(g)",
                [run_id],
            )


def read_run_ids(warehouse: Warehouse) -> set[str]:
    union = " UNION ALL ".join(f"SELECT run_id FROM analytics.{m}" for m in MARTS)
    _, rows = warehouse.read_published(f"SELECT DISTINCT run_id FROM ({union}) AS u")
    return {row[0] for row in rows}


def test_publish_moves_every_mart_with_the_run_stamp(warehouse):
    build_audit(warehouse, "night-1")
    publication = publish(warehouse, "night-1", AS_OF)
    assert set(publication.tables) == set(MARTS)
    assert read_run_ids(warehouse) == {"night-1"}


def test_a_failed_night_leaves_the_published_tables_as_they_were(warehouse):
    build_audit(warehouse, "night-1")
    publish(warehouse, "night-1", AS_OF)
    build_audit(warehouse, "night-2")  # built but never published (say, a gate failed)
    assert read_run_ids(warehouse) == {"night-1"}


def test_duckdb_readers_never_see_a_mixed_state_and_never_block_the_writer(tmp_path):
    warehouse = open_warehouse(str(tmp_path / "warehouse.duckdb"))
    build_audit(warehouse, "night-0")
    publish(warehouse, "night-0", AS_OF)
    reader = textwrap.dedent(
        f"""
        import time, duckdb
        union = " UNION ALL ".join(f"SELECT run_id FROM analytics.{{m}}" for m in {MARTS!r})
        seen, mixed = set(), 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with duckdb.connect({str(warehouse.published_path)!r}, read_only=True) as con:
                ids = {{r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM ({{union}})").fetchall()}}
            mixed += len(ids) != 1
            seen |= ids
            if "night-5" in seen:
                break
        print(len(seen), mixed)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", reader], stdout=subprocess.PIPE, text=True)
    for night in range(1, 6):
        build_audit(warehouse, f"night-{night}")
        publish(warehouse, f"night-{night}", AS_OF)
    output, _ = process.communicate(timeout=90)
    distinct_seen, mixed = map(int, output.split())
    assert mixed == 0
    assert distinct_seen >= 2, "the reader kept reading while nights were published"


@pytest.mark.postgres
def test_postgres_readers_never_see_a_mixed_state(postgres_url):
    """A reader loops while five nights are published; it sees each night whole, and some
    of its reads run while a publish is under way (so the swap really had a reader)."""
    warehouse = open_warehouse(postgres_url)
    build_audit(warehouse, "night-0", rows=20000)
    publish(warehouse, "night-0", AS_OF)
    stop, seen, mixed, errors = threading.Event(), set(), [], []
    reads: list[tuple[float, float]] = []  # (start, end) of each read, monotonic

    def read_loop():
        while not stop.is_set():
            started = time.monotonic()
            try:
                ids = read_run_ids(warehouse)
            except Exception as error:  # noqa: BLE001 - recorded and asserted below
                errors.append(repr(error))
                continue
            reads.append((started, time.monotonic()))
            seen.update(ids)
            if len(ids) != 1:
                mixed.append(ids)

    def reads_after(moment: float, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum(start >= moment for start, _ in reads) < count:
            assert time.monotonic() < deadline, "the reader stopped reading"
            time.sleep(0.005)

    thread = threading.Thread(target=read_loop)
    thread.start()
    publishing: list[tuple[float, float]] = []
    for night in range(1, 6):
        build_audit(warehouse, f"night-{night}", rows=20000)
        reads_after(time.monotonic(), 1)  # the reader is at work as the publish begins
        started = time.monotonic()
        publish(warehouse, f"night-{night}", AS_OF)
        publishing.append((started, time.monotonic()))
        reads_after(time.monotonic(), 2)  # and reads the new night before the next one
    stop.set()
    thread.join(timeout=60)
    assert mixed == [] and errors == []
    assert seen == {f"night-{n}" for n in range(6)}, "the reader saw every night, whole"
    overlapping = [
        (r0, r1) for r0, r1 in reads if any(r0 < p1 and p0 < r1 for p0, p1 in publishing)
    ]
    assert overlapping, f"no read overlapped any of the {len(publishing)} publishes"
