"""The billing export folder: one JSON Lines file per resource (`customers.jsonl`, ...),
plus `invoice_lines.jsonl` for invoices whose embedded line list is cut short.

Each line is one Stripe object. Lines are read one by one so that a bad line
(not UTF-8, not JSON, not an object, no `id`) is reported with its line number
and reason and never stops the rest of the file. A resource whose file is
missing yields nothing: an export may hold only some resources (e.g. charges
only). A later line replaces an earlier one with the same `id` (`latest_by_id`).

Speed: msgspec decodes a line (about 3x faster than `json`, to the same objects);
a line it refuses is read by `json`, which also words the reason. `DumpedTexts`
hands out `json.dumps(obj, ensure_ascii=False)` of an object, the raw column, from
the line itself when the line is already in that form (as Python exporters and the
simulator write it) instead of encoding the object again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple, TypeVar

import msgspec

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
    # `raw` is exactly json.dumps(obj, ensure_ascii=False) (`is_dumped_form`).
    dumped: bool = False


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


_floats_read = [0]  # grows whenever msgspec reads a float


def _float(text: str) -> float:
    _floats_read[0] += 1
    return float(text)  # what json.loads does with a float


_decode = msgspec.json.Decoder(float_hook=_float).decode


def parse_line(line_no: int, data: bytes) -> ExportLine:
    """One export line as an object, or the reason it is not one."""
    data = data.rstrip(b"\r\n")
    floats = _floats_read[0]
    try:
        obj = _decode(data)
    except ValueError:  # msgspec.DecodeError, or not UTF-8
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("id"), str) and obj["id"]:
        text = data.decode("utf-8")
        # json.dumps spells floats its own way. (Another thread's float only turns
        # the answer to no: the safe side.)
        dumped = _floats_read[0] == floats and is_dumped_form(data, obj)
        return ExportLine(line_no, obj, text, None, dumped)
    # Bad, or what only `json` reads (NaN, a lone surrogate): `json` says which and why.
    return _parse_line_with_json(line_no, data)


def _parse_line_with_json(line_no: int, data: bytes) -> ExportLine:
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


# json.dumps writes \\u escapes for control characters only (in lower case); a line
# holding one is left to json.dumps. (A string holding the text only costs speed.)
_ESCAPED_CHARACTER = b"\\u"
_encode = msgspec.json.Encoder().encode


class _Lines(msgspec.Struct):
    data: list[msgspec.Raw] | None = None


class _WithLines(msgspec.Struct):
    lines: _Lines | None = None


_decode_lines = msgspec.json.Decoder(_WithLines).decode


def is_dumped_form(data: bytes, obj: dict) -> bool:
    """Whether `data`, a UTF-8 JSON text holding no float that decodes to `obj`, is
    exactly json.dumps(obj, ensure_ascii=False).

    msgspec's one-line format has json.dumps' separators and keeps every token as
    written, so an equal text is spaced as json.dumps spaces it. Its tokens are the
    ones `obj` encodes to (not so with a repeated key, -0, an escaped slash...), and
    without \\u escapes json.dumps writes those tokens the same way.
    """
    if _ESCAPED_CHARACTER in data or msgspec.json.format(data, indent=0) != data:
        return False
    try:
        return _encode(obj) == msgspec.json.format(data, indent=-1)
    except (TypeError, ValueError, OverflowError):  # what msgspec cannot write: json.dumps
        return False


class DumpedTexts:
    """`json.dumps(obj, ensure_ascii=False)` of export objects, from their lines when it can.

    Objects are remembered by identity (a reference is kept, so an id is never reused
    by another object while this lives). An invoice's embedded lines are remembered
    too: in a line of json.dumps' form, each is a slice of it.
    """

    def __init__(self) -> None:
        self._texts: dict[int, tuple[dict, str]] = {}

    def remember(self, line: ExportLine) -> None:
        if not line.dumped:
            return
        obj, text = line.obj, line.raw
        self._texts[id(obj)] = (obj, text)
        lines = obj.get("lines")
        lines = lines.get("data") if isinstance(lines, dict) else None
        if not isinstance(lines, list) or not lines:
            return
        try:
            raws = _decode_lines(text).lines.data
        except (msgspec.DecodeError, AttributeError):  # no `lines` object or `data` list
            return
        if raws is None or len(raws) != len(lines):
            return
        for line, raw in zip(lines, raws, strict=True):
            if isinstance(line, dict):
                self._texts[id(line)] = (line, bytes(raw).decode("utf-8"))

    def dumps(self, obj: dict) -> str:
        known = self._texts.get(id(obj))
        if known is not None and known[0] is obj:
            return known[1]
        return json.dumps(obj, ensure_ascii=False)
