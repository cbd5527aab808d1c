"""Raw loads on the real engines: idempotent, atomic, audited; DuckDB file and PostgreSQL."""

import subprocess
import sys
import textwrap
from datetime import datetime

import pytest
from factories import table_fingerprint, track, write_partition

from churnhouse.config import SourceSettings
from churnhouse.contracts import PARSED_PREFIX, RAW_SCHEMA, RunWindow
from churnhouse.ingest import ingest
from churnhouse.sources.events import EVENTS
from churnhouse.warehouse import open_warehouse
from churnhouse.warehouse.duckdb import DuckDBTransaction

RUN = RunWindow("night-1", datetime(2024, 9, 2), datetime(2024, 9, 3))
RAW_TABLES = ("raw.events", "raw._quarantine")


@pytest.fixture
def sources(tmp_path):
    root = tmp_path / "events"
    lines = [track(f"m{i}", f"2024-09-0{1 + i % 2}T10:00:00+08:00") for i in range(300)]
    write_partition(root, "2024-09-01", lines[:200] + ["{broken", "{broken"])
    write_partition(root, "2024-09-02", lines[150:] + [track("late", "2024-08-28T23:00:00-05:00")])
    (tmp_path / "surveys").mkdir()
    return SourceSettings(
        crm_url="", billing_url="", events_uri=str(root), surveys_uri=str(tmp_path / "surveys")
    )


def fingerprints(warehouse):
    with warehouse.transaction() as tx:
        return {table: table_fingerprint(tx, table) for table in RAW_TABLES}


def test_same_interval_twice_gives_identical_tables(warehouse, sources):
    first = ingest("events", RUN, sources, warehouse)
    after_first = fingerprints(warehouse)
    ingest("events", RUN, sources, warehouse)
    assert fingerprints(warehouse) == after_first
    assert after_first["raw.events"][0] == 301, "300 messages + 1 late one, duplicates collapsed"
    assert after_first["raw._quarantine"][0] == 1, "identical bad content counts once"
    assert (first.rows_loaded, first.rows_quarantined) == (301, 1)


def test_loads_are_audited(warehouse, sources):
    ingest("events", RUN, sources, warehouse)
    with warehouse.transaction() as tx:
        rows = tx.fetchall(
            "SELECT source, interval_start, interval_end, rows_loaded, rows_quarantined, status "
            "FROM raw._loads"
        )
    assert rows == [("events", RUN.interval_start, RUN.interval_end, 301, 1, "success")]


def test_a_failed_load_commits_nothing_and_is_recorded(warehouse, sources, monkeypatch):
    import churnhouse.load as load

    ingest("events", RUN, sources, warehouse)
    before = fingerprints(warehouse)
    write_partition(
        sources_root(sources), "2024-09-02", [track("new", "2024-09-02T01:00:00Z")], part=1
    )

    def explode(*args, **kwargs):
        raise RuntimeError("disk full while writing the quarantine")

    original = load.merge_staged
    calls = []

    def merge_then_fail(tx, table, staged):
        original(tx, table, staged)
        calls.append(table.name)
        if table.name == "_quarantine":
            explode()

    monkeypatch.setattr(load, "merge_staged", merge_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest("events", RUN, sources, warehouse)
    assert calls == ["events", "_quarantine"], "the events merge ran before the failure"
    assert fingerprints(warehouse) == before, "nothing of the failed batch is visible"
    with warehouse.transaction() as tx:
        statuses = tx.fetchall("SELECT status, message FROM raw._loads ORDER BY finished_at")
    assert statuses[-1][0] == "failed" and "disk full" in statuses[-1][1]


def scratch_tables(tx) -> list[tuple]:
    return tx.fetchall(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
        "AND starts_with(table_name, ?)",
        [RAW_SCHEMA, PARSED_PREFIX],
    )


def scratch_tables_left(warehouse) -> list[tuple]:
    with warehouse.transaction() as tx:
        return scratch_tables(tx)


def test_a_duckdb_load_parses_into_a_table_that_never_outlives_it(tmp_path, sources, monkeypatch):
    """The events are parsed into a table of the warehouse file (not a temp table); it
    is renamed into place or dropped before the load commits, and gone with a load that
    fails."""
    import churnhouse.load as load

    warehouse = open_warehouse(str(tmp_path / "scratch.duckdb"))
    seen = []
    original = load.merge_staged

    def merge_and_look(tx, table, staged):
        if table.name == "events":
            seen.extend(scratch_tables(tx))
        original(tx, table, staged)

    monkeypatch.setattr(load, "merge_staged", merge_and_look)
    ingest("events", RUN, sources, warehouse)
    assert seen == [("_parsed_events",)], "the lines were parsed into the scratch table"
    assert scratch_tables_left(warehouse) == []

    def merge_then_fail(tx, table, staged):
        original(tx, table, staged)
        raise RuntimeError("disk full")

    monkeypatch.setattr(load, "merge_staged", merge_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest("events", RUN, sources, warehouse)
    with warehouse.connection() as connection:  # not a transaction: that would drop it too
        left = connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE starts_with(table_name, ?)",
            [PARSED_PREFIX],
        ).fetchone()
    assert left == (0,), "the failed load dropped what it parsed"
    with warehouse.transaction() as tx:
        assert tx.fetchone("SELECT count(*) FROM raw.events") == (301,)


def test_a_first_duckdb_load_renames_its_parsed_rows_into_place(tmp_path, sources, monkeypatch):
    """Into an empty raw.events the parsed table becomes raw.events (its rows are written
    once); the table equals what the merge into an existing table gives, line numbers,
    quarantine and the collapsed re-deliveries included, and later loads merge into it."""

    adopted = []
    original = DuckDBTransaction.adopt_staged

    def adopt_and_record(self, table, staged):
        adopted.append((table.name, original(self, table, staged)))
        return adopted[-1][1]

    monkeypatch.setattr(DuckDBTransaction, "adopt_staged", adopt_and_record)
    renamed = open_warehouse(str(tmp_path / "renamed.duckdb"))
    ingest("events", RUN, sources, renamed)
    assert adopted[0] == ("events", True), "the first load took the parsed table as raw.events"

    monkeypatch.setattr(DuckDBTransaction, "adopt_staged", lambda self, table, staged: False)
    merged = open_warehouse(str(tmp_path / "merged.duckdb"))
    ingest("events", RUN, sources, merged)
    assert fingerprints(renamed) == fingerprints(merged)
    with renamed.transaction() as tx:
        lines = tx.fetchall("SELECT file, line, message_id FROM raw.events ORDER BY 1, 2 LIMIT 2")
        columns = tx.fetchall(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'events' ORDER BY ordinal_position"
        )
    first_file = "dt=2024-09-01/part-0000.jsonl.gz"
    assert lines == [(first_file, 1, "m0"), (first_file, 2, "m1")]
    assert [name for (name,) in columns] == list(EVENTS.all_columns)

    monkeypatch.setattr(DuckDBTransaction, "adopt_staged", adopt_and_record)
    adopted.clear()
    later = RunWindow("night-2", datetime(2024, 9, 3), datetime(2024, 9, 4))
    ingest("events", later, sources, renamed)
    assert adopted[0] == ("events", False), "a table holding rows is merged into"
    assert fingerprints(renamed) == fingerprints(merged)


def sources_root(sources):
    from pathlib import Path

    return Path(sources.events_uri)


def test_a_killed_load_leaves_no_partial_batch(tmp_path, sources):
    """A process killed mid-transaction (os._exit after the first merge) on the DuckDB file."""
    path = tmp_path / "killed.duckdb"
    script = textwrap.dedent(
        f"""
        import os
        from datetime import datetime
        import churnhouse.load as load
        from churnhouse.config import SourceSettings
        from churnhouse.ingest import ingest
        from churnhouse.contracts import RunWindow
        from churnhouse.warehouse import open_warehouse

        original = load.merge_staged
        def merge_then_die(tx, table, staged):
            original(tx, table, staged)
            os._exit(9)
        load.merge_staged = merge_then_die
        sources = SourceSettings(crm_url="", billing_url="", events_uri={sources.events_uri!r}, surveys_uri="")
        run = RunWindow("night-1", datetime(2024, 9, 2), datetime(2024, 9, 3))
        ingest("events", run, sources, open_warehouse({str(path)!r}))
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == 9, killed.stderr
    warehouse = open_warehouse(str(path))
    with warehouse.connection() as connection:
        parsed = connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_parsed_events'"
        ).fetchone()
    assert parsed == (1,), "what the killed load parsed was committed before its transaction"
    with warehouse.transaction() as tx:
        tables = {row[0] for row in tx.fetchall("SELECT table_name FROM information_schema.tables")}
        assert "events" not in tables or tx.fetchone("SELECT count(*) FROM raw.events") == (0,)
        assert "_parsed_events" not in tables, "the killed load's parsed rows are dropped"

    ingest("events", RUN, sources, warehouse)
    clean = open_warehouse(str(tmp_path / "clean.duckdb"))
    ingest("events", RUN, sources, clean)
    assert fingerprints(warehouse) == fingerprints(clean)


def test_parallel_loads_into_one_duckdb_file_do_not_collide(tmp_path, sources):
    """Two processes (like two Airflow task processes) load different sources at once."""
    path = tmp_path / "shared.duckdb"
    (tmp_path / "surveys" / "nps").mkdir()
    (tmp_path / "surveys" / "nps" / "a.csv").write_text(
        "response_id,submitted_at,email,score,comment\nn1,2024-09-01T00:00:00Z,a@b.co,9,\n"
    )
    script = textwrap.dedent(
        """
        import sys
        from datetime import datetime
        from churnhouse.config import SourceSettings
        from churnhouse.ingest import ingest
        from churnhouse.contracts import RunWindow
        from churnhouse.warehouse import open_warehouse

        events, surveys, path, source = sys.argv[1:]
        sources = SourceSettings(crm_url="", billing_url="", events_uri=events, surveys_uri=surveys)
        run = RunWindow("night-1", datetime(2024, 9, 2), datetime(2024, 9, 3))
        for _ in range(3):
            ingest(source, run, sources, open_warehouse(path))
        """
    )
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                script,
                sources.events_uri,
                sources.surveys_uri,
                str(path),
                source,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in ("events", "surveys", "events", "surveys")
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    with open_warehouse(str(path)).transaction() as tx:
        assert tx.fetchone("SELECT count(*) FROM raw.events") == (301,)
        assert tx.fetchone("SELECT count(*) FROM raw.survey_nps") == (1,)
        assert tx.fetchone("SELECT count(*) FROM raw._loads WHERE status = 'success'") == (12,)
