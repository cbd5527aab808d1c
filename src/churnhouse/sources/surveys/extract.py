"""Parse survey CSVs (BOM, RFC 4180 multi-line quoting, any language) into Arrow batches."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime

from churnhouse.config import SourceSettings
from churnhouse.contracts import (
    BadRecord,
    Batch,
    Extracted,
    ExtractWindow,
    RawTable,
    RunWindow,
    naive_utc,
    with_meta,
)

SOURCE = "surveys"

_COMMON = {
    "response_id": "TEXT",
    "submitted_at": "TIMESTAMP",
    "submitted_at_raw": "TEXT",
    "email": "TEXT",
}
_FILE_COLUMNS = {"raw": "TEXT", "file": "TEXT", "line": "BIGINT", "_pick": "TEXT"}

CANCELLATIONS = RawTable(
    "survey_cancellations",
    {
        **_COMMON,
        "subscription_id": "TEXT",
        "primary_reason": "TEXT",
        "reason_text": "TEXT",
        "offer_presented": "TEXT",
        "offer_accepted": "TEXT",
        "outcome": "TEXT",
        **_FILE_COLUMNS,
    },
    key=("response_id",),
    merge="keep_highest",
)

NPS = RawTable(
    "survey_nps",
    {**_COMMON, "score": "INTEGER", "comment": "TEXT", **_FILE_COLUMNS},
    key=("response_id",),
    merge="keep_highest",
)


def parse_timestamp(text: str | None) -> datetime | None:
    """ISO-8601 with any offset → naive UTC; no offset means UTC; None when unparseable."""
    if not text or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return naive_utc(moment)


CANCELLATION_COLUMNS = (
    "response_id",
    "submitted_at",
    "email",
    "subscription_id",
    "primary_reason",
    "reason_text",
    "offer_presented",
    "offer_accepted",
    "outcome",
)
NPS_COLUMNS = ("response_id", "submitted_at", "email", "score", "comment")


class FileRefused(Exception):
    """A whole survey file the contract refuses (not UTF-8, a required column missing)."""


def _file_text(filesystem, path: str, relative: str) -> str:
    data = filesystem.cat_file(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FileRefused(
            f"{relative}: not UTF-8 (byte 0x{data[error.start]:02x} at position {error.start}); "
            "export it as UTF-8"
        ) from error


def _records(
    text: str, relative: str, required: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str], str]]:
    """(line where the record starts, row dict, the record's CSV text) for each data row."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in required if name not in reader.fieldnames]
    if missing:
        raise FileRefused(
            f"{relative}: header lacks required column(s) {', '.join(missing)} "
            f"(found: {', '.join(reader.fieldnames) or 'no header'})"
        )
    start_line = 2
    for row in reader:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(
            [row.get(name) or "" for name in reader.fieldnames]
        )
        yield start_line, row, buffer.getvalue()
        start_line = reader.line_num + 1


def _cancellation_problem(row: dict[str, str]) -> str | None:
    if not (row.get("response_id") or "").strip():
        return "missing response_id"
    if parse_timestamp(row.get("submitted_at")) is None:
        return f"unparseable submitted_at: {row.get('submitted_at')!r}"
    return None


def _nps_problem(row: dict[str, str]) -> str | None:
    if not (row.get("response_id") or "").strip():
        return "missing response_id"
    if not (row.get("email") or "").strip():
        return "missing email"
    if parse_timestamp(row.get("submitted_at")) is None:
        return f"unparseable submitted_at: {row.get('submitted_at')!r}"
    score = (row.get("score") or "").strip()
    if not score.isdigit() or not 0 <= int(score) <= 10:
        return f"score not an integer 0-10: {score!r}"
    return None


def _cancellation_values(row: dict[str, str]) -> dict:
    return {
        "subscription_id": (row.get("subscription_id") or "").strip() or None,
        "primary_reason": (row.get("primary_reason") or "").strip() or None,
        "reason_text": row.get("reason_text") or None,
        "offer_presented": (row.get("offer_presented") or "").strip() or None,
        "offer_accepted": (row.get("offer_accepted") or "").strip().lower() or None,
        "outcome": (row.get("outcome") or "").strip() or None,
    }


def _nps_values(row: dict[str, str]) -> dict:
    return {"score": int(row["score"].strip()), "comment": row.get("comment") or None}


def _read_folder(
    filesystem,
    folder: str,
    table: RawTable,
    kind: str,
    required: tuple[str, ...],
    problem: Callable[[dict], str | None],
    values: Callable[[dict], dict],
    run: RunWindow,
) -> tuple[Batch, list[BadRecord]]:
    columns: dict[str, list] = {name: [] for name in table.columns}
    bad: list[BadRecord] = []
    files = sorted(filesystem.glob(f"{folder}/*.csv")) if filesystem.isdir(folder) else []
    for path in files:
        relative = "/".join(path.rstrip("/").rsplit("/", 2)[-2:])  # e.g. nps/2024-09.csv
        try:
            records = list(_records(_file_text(filesystem, path, relative), relative, required))
        except FileRefused as refused:
            head = filesystem.cat_file(path)[:500].decode("utf-8", "replace")
            bad.append(BadRecord(f"{kind}_file", relative, head, str(refused), fails_night=True))
            continue
        for line, row, text in records:
            location = f"{relative}:{line}"
            reason = problem(row)
            if reason:
                bad.append(BadRecord(kind, location, text, reason))
                continue
            record = {
                "response_id": row["response_id"].strip(),
                "submitted_at": parse_timestamp(row["submitted_at"]),
                "submitted_at_raw": row["submitted_at"],
                "email": row.get("email"),
                **values(row),
                "raw": json.dumps(row, ensure_ascii=False),
                "file": relative,
                "line": line,
                "_pick": f"{relative}:{line:010d}",
            }
            for name in table.columns:
                columns[name].append(record[name])
    return Batch(table, with_meta(table, columns, SOURCE, run)), bad


def extract(window: ExtractWindow, settings: SourceSettings) -> Extracted:
    """Both survey kinds (every file, each run): their batches and their quarantined rows."""
    import fsspec

    surveys_uri, run = settings.surveys_uri, window.run
    filesystem, root = fsspec.core.url_to_fs(surveys_uri)
    root = root.rstrip("/")
    if not filesystem.isdir(root):
        raise FileNotFoundError(f"surveys location {surveys_uri} is not a folder")
    cancellations, bad_cancellations = _read_folder(
        filesystem,
        f"{root}/cancellation",
        CANCELLATIONS,
        "cancellation_response",
        CANCELLATION_COLUMNS,
        _cancellation_problem,
        _cancellation_values,
        run,
    )
    nps, bad_nps = _read_folder(
        filesystem, f"{root}/nps", NPS, "nps_response", NPS_COLUMNS, _nps_problem, _nps_values, run
    )
    return Extracted(
        [_latest_per_response(cancellations), _latest_per_response(nps)],
        bad_cancellations + bad_nps,
    )


def _latest_per_response(batch: Batch) -> Batch:
    """Within one read, the last row (file-name order) per response_id wins."""
    rows = batch.rows
    if rows.num_rows == 0:
        return batch
    import duckdb

    con = duckdb.connect()
    con.register("b", rows)
    latest = con.sql(
        "SELECT * FROM b QUALIFY row_number() OVER "
        "(PARTITION BY response_id ORDER BY _pick DESC) = 1"
    ).to_arrow_table()
    return Batch(batch.table, latest.cast(batch.table.arrow_schema()))
