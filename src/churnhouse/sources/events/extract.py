"""Read event partitions into an Arrow batch plus quarantined lines."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import partial

import pyarrow as pa

from churnhouse.config import SourceSettings
from churnhouse.contracts import (
    PARSED_PREFIX,
    RAW_SCHEMA,
    BadRecord,
    Batch,
    BatchInputUnreadable,
    Extracted,
    ExtractWindow,
    RawTable,
    RunWindow,
)

SOURCE = "events"

EVENTS = RawTable(
    "events",
    {
        "message_id": "TEXT",
        "type": "TEXT",
        "event": "TEXT",
        "name": "TEXT",  # page and screen calls: which page or screen
        "user_id": "TEXT",
        "anonymous_id": "TEXT",
        "group_id": "TEXT",  # the call's own workspace: top level, else context.groupId
        "event_at": "TIMESTAMP",
        "received_at": "TIMESTAMP",
        "timestamp_raw": "TEXT",
        "email": "TEXT",
        "context": "TEXT",
        "properties": "TEXT",
        "traits": "TEXT",
        "raw": "TEXT",
        "dt": "DATE",
        "file": "TEXT",
        "line": "BIGINT",
    },
    key=("message_id",),
    merge="keep_lowest",
    pick=("file", "line"),  # the first delivery wins
)

_PARTITION = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")

# One JSON parse per line: the keys the contract names, in both key styles (sources.md
# section 3: wire style camelCase as the tracking libraries send it, warehouse style
# snake_case), shredded into a struct. JSON keys are case-sensitive, so both fit in one.
_STYLES = {  # raw column: (wire key, warehouse key)
    "message_id": ("messageId", "message_id"),
    "user_id": ("userId", "user_id"),
    "anonymous_id": ("anonymousId", "anonymous_id"),
    "group_id": ("groupId", "group_id"),
    "received_at": ("receivedAt", "received_at"),
}
_TEXT_KEYS = ("type", "event", "name", "timestamp", *(k for pair in _STYLES.values() for k in pair))
_JSON_KEYS = ("context", "properties", "traits")
_SHAPE = (
    "{"
    + ",".join([*(f'"{k}":"VARCHAR"' for k in _TEXT_KEYS), *(f'"{k}":"JSON"' for k in _JSON_KEYS)])
    + "}"
)
_CONTRACT_KEYS = ", ".join(f"'{k}'" for k in (*_TEXT_KEYS, *_JSON_KEYS))


def _either(column: str) -> str:
    """The value of `column` in whichever key style the line uses (an empty string is none)."""
    wire, warehouse = _STYLES[column]
    return f"coalesce(nullif(e.\"{wire}\", ''), nullif(e.\"{warehouse}\", ''))"


# The whole line is kept only when it holds a top-level key beyond the contract (the
# columns, `context`, `properties` and `traits` hold the rest) or when it is bad (for the
# quarantine): nothing is lost, and the common line is not copied again. The list filter
# over the keys runs only on lines with more keys than contract fields found (every line
# with another key has more); counting is half the cost of filtering every line.
_KEYS_FOUND = " + ".join(f'(e."{k}" IS NOT NULL)::INTEGER' for k in (*_TEXT_KEYS, *_JSON_KEYS))
_BEYOND_CONTRACT = f"""CASE WHEN len(keys) > {_KEYS_FOUND}
    THEN len(list_filter(keys, lambda k: k NOT IN ({_CONTRACT_KEYS}))) > 0 ELSE false END"""

_READ_LINES = """
read_csv(?, columns = {'line': 'VARCHAR'}, delim = chr(31), quote = '', escape = '',
         header = false, filename = true, auto_detect = false, strict_mode = false)
"""

# The table a load parses its lines into: every line one row, in file order, with the raw
# columns and four working columns (`_WORK_COLUMNS`). It sits in the raw schema beside
# raw.events (contracts.PARSED_PREFIX): after the working columns and the rows that are no
# new event are dropped it holds exactly the rows to load, in raw.events' columns, and a
# first load renames it into place, so 12M rows are written once, not twice (10,000 x 24:
# 23-24 s against 34 s for parse and copy).
PARSED = f"{RAW_SCHEMA}.{PARSED_PREFIX}events"
_WORK_COLUMNS = {
    "file_hash": "UBIGINT",
    "id_hash": "UBIGINT",
    "is_event": "BOOLEAN",
    "reason": "TEXT",
}

# One pass from the files to the rows: each line read, checked and shredded into the
# raw columns at once, so no table of every line's text is kept on the way (12M lines
# are ~3 GB of text). Every line (blank ones too) is one row: in file order
# (preserve_insertion_order) the rowid gives line numbers (`_number_lines`). Rows are
# matched to their file by a hash of its path, and carry a hash of the message id, which
# finds re-deliveries by grouping integers (2.8 s against 7.2 s hashing then). `line` is
# the line's text until the last step, which names it `raw` and keeps it only where needed.
_PARSE_SQL = f"""
CREATE TABLE {PARSED} AS
WITH lines AS (
    SELECT hash(filename) AS file_hash, line,  -- an empty line reads as NULL
           coalesce(json_valid(line) AND ltrim(line)[1] = '{{', false) AS is_object
    FROM {_READ_LINES}
), parsed AS (  -- json_transform fails on invalid JSON: objects only
    SELECT *, CASE WHEN is_object THEN json_transform(line, '{_SHAPE}') END AS e,
           CASE WHEN is_object THEN json_keys(line) END AS keys
    FROM lines
), checked AS (
    SELECT *, {_either("message_id")} AS message_id,
           try_cast(e.timestamp AS TIMESTAMPTZ) AS event_tz,
           try_cast({_either("received_at")} AS TIMESTAMPTZ) AS received_tz
    FROM parsed
), judged AS (
    SELECT *,
           CASE
               WHEN NOT is_object THEN
                   CASE
                       WHEN coalesce(trim(line), '') = '' THEN NULL  -- a blank line is no record
                       WHEN json_valid(line) THEN 'not a JSON object'
                       ELSE 'invalid JSON'
                   END
               WHEN message_id IS NULL THEN 'missing required key: message_id'
               WHEN e.type IS NULL OR e.type = '' THEN 'missing required key: type'
               WHEN e.timestamp IS NULL OR e.timestamp = ''
                   THEN 'missing required key: timestamp'
               WHEN event_tz IS NULL THEN 'unparseable timestamp: ' || e.timestamp
           END AS reason
    FROM checked
), shredded AS (
    SELECT message_id, e.type, e.event, e.name,
           {_either("user_id")} AS user_id,
           {_either("anonymous_id")} AS anonymous_id,
           coalesce(
               {_either("group_id")},
               nullif(json_extract_string(e.context, '$.groupId'), ''),
               nullif(json_extract_string(e.context, '$.group_id'), '')
           ) AS group_id,
           -- UTC wall time from the instant; cheaper than timezone('UTC', ...) (ICU)
           make_timestamp(epoch_us(event_tz)) AS event_at,
           make_timestamp(epoch_us(received_tz)) AS received_at,
           e.timestamp AS timestamp_raw,
           coalesce(
               json_extract_string(e.traits, '$.email'),
               json_extract_string(e.context, '$.traits.email')
           ) AS email,
           e.context::VARCHAR AS context,
           e.properties::VARCHAR AS properties,
           e.traits::VARCHAR AS traits,
           CASE WHEN reason IS NOT NULL OR (is_object AND {_BEYOND_CONTRACT}) THEN line END
               AS raw,
           file_hash, hash(message_id) AS id_hash, is_object AND reason IS NULL AS is_event,
           reason
    FROM judged
), listed AS (  -- per file, once: its name from the partition on, and the partition's day
    SELECT hash(file_path) AS file_hash,
           regexp_extract(file_path, '(dt=[^/]+/[^/]+)$', 1) AS relative,
           CAST(regexp_extract(file_path, 'dt=(\\d{{4}}-\\d{{2}}-\\d{{2}})/[^/]+$', 1)
                AS DATE) AS dt
    FROM unnest(?) AS files(file_path)
)
SELECT message_id, type, event, name, user_id, anonymous_id, group_id, event_at,
       received_at, timestamp_raw, email, context, properties, traits, raw,
       listed.dt, listed.relative AS file, CAST(NULL AS BIGINT) AS line,
       '{SOURCE}' AS _source, ? AS _run_id,
       timezone('UTC', now())::TIMESTAMP AS _loaded_at,
       {", ".join(_WORK_COLUMNS)}
FROM shredded LEFT JOIN listed USING (file_hash)
"""


def _filesystem(events_uri: str):
    """A local path, `file://` URI or any fsspec URI (`s3://`, `gs://`, `memory://`, ...)."""
    import fsspec

    filesystem, path = fsspec.core.url_to_fs(events_uri)
    return filesystem, path.rstrip("/")


def _is_local(filesystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(filesystem, LocalFileSystem)


def partitions_between(events_uri: str, since: date | None, until: date) -> list[str]:
    """Partition folders with `since <= dt < until` (all before `until` when since is None)."""
    filesystem, root = _filesystem(events_uri)
    if not filesystem.isdir(root):
        raise FileNotFoundError(f"events location {events_uri} is not a folder")
    chosen = []
    for folder in sorted(filesystem.ls(root, detail=False)):
        match = _PARTITION.match(folder.rstrip("/").rsplit("/", 1)[-1])
        if not match or not filesystem.isdir(folder):
            continue
        day = date.fromisoformat(match.group(1))
        if day < until and (since is None or day >= since):
            chosen.append(folder)
    return chosen


def extract(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    """The partitions from the window's first day to its end, parsed where they are loaded."""
    since = window.since.date() if window.since else None
    return Extracted(
        [read_partitions(settings.events_uri, since, end_day(window.until), window.run)]
    )


def end_day(interval_end: datetime) -> date:
    """Partitions strictly before the interval end (a partial day at the end is included)."""
    day = interval_end.date()
    return (
        day if interval_end == datetime(day.year, day.month, day.day) else day + timedelta(days=1)
    )


def read_partitions(events_uri: str, since: date | None, until: date, run: RunWindow) -> Batch:
    """A batch of the partitions in [since, until), parsed where it is loaded (see `fill`)."""
    filesystem, _ = _filesystem(events_uri)
    files = []
    for folder in partitions_between(events_uri, since, until):
        files.extend(sorted(filesystem.glob(f"{folder}/*.jsonl*")))
    if not _is_local(filesystem):
        files = [filesystem.unstrip_protocol(path) for path in files]
    return _batch(files, filesystem, run)


def _batch(files: list[str], filesystem, run: RunWindow) -> Batch:
    return Batch(
        EVENTS,
        fill=fill,
        parse_ahead=partial(parse, files=files, filesystem=filesystem, run=run),
        parsed=PARSED,
    )


def parse(con, *, files: list[str], filesystem, run: RunWindow) -> None:
    """Every line of `files` into `PARSED` inside DuckDB connection `con`, numbered by file
    and line. On a DuckDB warehouse this runs in its own connection just before the load's
    transaction (`Batch.parse_ahead`): the rows are committed when they are numbered."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    con.execute(f"DROP TABLE IF EXISTS {PARSED}")
    if not files:
        work = ", ".join(f"{name} {kind}" for name, kind in _WORK_COLUMNS.items())
        con.execute(f"CREATE TABLE {PARSED} ({EVENTS.column_ddl()}, {work})")
        return
    if not _is_local(filesystem):
        con.register_filesystem(filesystem)
    _check_paths_hash_apart(con, files)
    con.execute("SET preserve_insertion_order = true")  # rowid must follow file order here
    try:
        _read_and_classify(con, files, filesystem, run)
    finally:
        con.execute("SET preserve_insertion_order = false")  # the rest may run in any order
    _number_lines(con)


def fill(con, staged: str) -> list[BadRecord]:
    """The new events `parse` left in `PARSED` as temp view `staged` in DuckDB connection
    `con`; returns the bad lines.

    On a DuckDB warehouse `con` is the warehouse's own connection, so rows go from
    the gzip files to the raw table without leaving DuckDB.
    """
    _mark_later_copies(con)
    bad = _bad_rows(con)
    con.execute(
        f"DELETE FROM {PARSED} WHERE NOT is_event OR rowid IN (SELECT row_id FROM later_copies)"
    )
    for column in _WORK_COLUMNS:
        con.execute(f"ALTER TABLE {PARSED} DROP COLUMN {column}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {staged} AS SELECT * FROM {PARSED}")
    return bad


def _check_paths_hash_apart(con, files: list[str]) -> None:
    """Lines find their file by a hash of its path: two listed paths must not share one."""
    listed, distinct = con.execute(
        "SELECT count(*), count(DISTINCT hash(file_path)) FROM unnest(?) AS files(file_path)",
        [files],
    ).fetchone()
    if listed != distinct:
        raise RuntimeError(f"events: {listed} files listed but {distinct} distinct path hashes")


def _read_and_classify(con, files: list[str], filesystem, run: RunWindow) -> None:
    """Every line of `files` into `PARSED`, or BatchInputUnreadable naming each file that
    cannot be read (not gzip, truncated, a line beyond DuckDB's limit) so the load is
    done again without them.

    The whole list is read at once; only when that fails is each file tried alone (in a
    scratch connection: a failed statement ends the warehouse's transaction), so a clean
    night pays nothing for the check.
    """
    import duckdb

    try:
        con.execute(_PARSE_SQL, [files, files, run.run_id])
        return
    except duckdb.Error as error:
        unreadable = _unreadable_files(files, filesystem)
        if not unreadable:
            raise
        readable = [path for path in files if path not in unreadable]
        bad = [
            BadRecord("event_file", _relative(p), _relative(p), why)
            for p, why in unreadable.items()
        ]
        raise BatchInputUnreadable(_batch(readable, filesystem, run), bad) from error


def _number_lines(con) -> None:
    """`line` from the rowid (file order): each file's rows follow one another. Every row
    must belong to a listed file, else lines would be mislabelled."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE file_starts AS "
        "SELECT file_hash, min(rowid) - 1 AS first_row, "
        "count(*) FILTER (WHERE file IS NULL) AS unlisted_rows "
        f"FROM {PARSED} GROUP BY file_hash"
    )
    read, unlisted = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE unlisted_rows > 0) FROM file_starts"
    ).fetchone()
    if unlisted:
        raise RuntimeError(
            f"events: {unlisted} of {read} files read are not among the listed paths: "
            "cannot tell the lines of each file apart"
        )
    con.execute(
        f"UPDATE {PARSED} AS p SET line = p.rowid - s.first_row "
        "FROM file_starts AS s WHERE s.file_hash = p.file_hash"
    )


def _unreadable_files(files: list[str], filesystem) -> dict[str, str]:
    import duckdb

    scratch = duckdb.connect()
    if not _is_local(filesystem):
        scratch.register_filesystem(filesystem)
    unreadable = {}
    for path in files:
        try:
            scratch.execute(f"SELECT count(*) FROM {_READ_LINES}", [[path]]).fetchone()
        except duckdb.Error as error:
            unreadable[path] = f"unreadable file: {str(error).splitlines()[0][:300]}"
    scratch.close()
    return unreadable


def _relative(path: str) -> str:
    """`dt=2024-09-01/part-0000.jsonl.gz`, whatever the root."""
    match = re.search(r"(dt=[^/]+/[^/]+)$", path)
    return match.group(1) if match else path


def read_events(
    events_uri: str, since: date | None, until: date, run: RunWindow
) -> tuple[pa.Table, list[BadRecord]]:
    """The good rows as Arrow, in file and line order, and the bad lines, parsed in a
    private in-memory DuckDB."""
    import duckdb

    batch = read_partitions(events_uri, since, until, run)
    con = duckdb.connect()
    batch.parse_ahead(con)
    bad = batch.fill(con, "events_batch")
    rows = con.sql("FROM events_batch ORDER BY file, line").to_arrow_table()
    return rows.cast(EVENTS.arrow_schema()), bad


def _mark_later_copies(con) -> None:
    """Re-deliveries of a message_id: every copy but the first (by file, line)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE later_copies AS
        WITH repeated AS (  -- grouped by a hash first: integers group faster than strings
            SELECT id_hash FROM {PARSED} WHERE is_event GROUP BY 1 HAVING count(*) > 1
        )
        SELECT rowid AS row_id FROM {PARSED}
        WHERE is_event AND id_hash IN (SELECT id_hash FROM repeated)
        QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY file, line) > 1
        """
    )


def _bad_rows(con) -> list[BadRecord]:
    rows = con.execute(
        f"SELECT file || ':' || line, raw, reason FROM {PARSED} "
        "WHERE reason IS NOT NULL ORDER BY file, line"
    ).fetchall()
    return [BadRecord("event", location, line, reason) for location, line, reason in rows]
