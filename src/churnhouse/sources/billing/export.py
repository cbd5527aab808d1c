"""The billing export folder: one JSON Lines file per resource (`customers.jsonl`, ...),
plus `invoice_lines.jsonl` for invoices whose embedded line list is cut short.

Each line is one Stripe object. Lines are read one by one so that a bad line
(not UTF-8, not JSON, not an object, no `id`) is reported with its line number
and reason and never stops the rest of the file. A resource whose file is
missing yields nothing: an export may hold only some resources (e.g. charges
only). A later line replaces an earlier one with the same `id` (`latest_by_id`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple, TypeVar

RESOURCES = ("customers", "subscriptions", "invoices", "charges", "prices")
# The rest of an invoice whose embedded `lines` list is cut short (`has_more`): line
# objects with `invoice` set. Only an export has this file; the API pages the lines.
INVOICE_LINES_FILE = "invoice_lines"

T = TypeVar("T")


class ExportLine(NamedTuple):
    """One non-blank line of an export file: the object, or why there is none."""

    line_no: int
    obj: dict | None
    raw: str
    error: str | None


def export_file(folder: Path | str, resource: str) -> Path:
    """The file that holds `resource` in an export folder."""
    if resource not in (*RESOURCES, INVOICE_LINES_FILE):
        raise ValueError(f"unknown billing resource {resource!r}; expected one of {RESOURCES}")
    return Path(folder) / f"{resource}.jsonl"


def iter_export_objects(folder: Path | str, resource: str) -> Iterator[ExportLine]:
    """Every non-blank line of `<folder>/<resource>.jsonl` in file order (1-based line numbers).

    Good lines carry the object and `error=None`; bad lines carry `obj=None` and
    the reason. A missing file yields nothing; a missing folder is an error.
    """
    path = export_file(folder, resource)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"billing export folder {path.parent} does not exist")
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        for line_no, data in enumerate(handle, start=1):
            if line_no == 1:
                data = data.removeprefix(b"\xef\xbb\xbf")
            if data.strip():
                yield parse_line(line_no, data)


def parse_line(line_no: int, data: bytes) -> ExportLine:
    """One export line as an object, or the reason it is not one."""
    data = data.rstrip(b"\r\n")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return ExportLine(line_no, None, data.decode("utf-8", "replace"), f"not UTF-8 ({error})")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as error:
        reason = f"invalid JSON at column {error.colno}: {error.msg}"
        return ExportLine(line_no, None, text, reason)
    if not isinstance(obj, dict):
        return ExportLine(line_no, None, text, f"not a JSON object (a {type(obj).__name__})")
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        return ExportLine(line_no, None, text, "no 'id' (a non-empty string is required)")
    return ExportLine(line_no, obj, text, None)


def latest_by_id(items: Iterable[T], id_of: Callable[[T], str] = itemgetter("id")) -> dict[str, T]:
    """The last item of each id, in order of each id's first appearance.

    `items` are objects (dicts with an `id`) unless `id_of` says how to find the id.
    """
    latest: dict[str, T] = {}
    for item in items:
        latest[id_of(item)] = item
    return latest
