"""Survey exports: cancellation-flow and NPS answers as CSV files in a landing folder.

One file per chunk and survey (`cancellation/responses-0003.csv`), written in
submission order. Mess, each counted: every cancellation file starts with a
byte-order mark; answers span lines and hold quotes, commas and Chinese; the
cancellation file of every `REDELIVER_EVERY`-th chunk is delivered again
under a later name; every `BAD_EVERY`-th company adds rows the pipeline must
quarantine (see `BAD_ROWS`), on top of its real answers.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from churnhouse.devkit.simulator.clock import DAY, iso
from churnhouse.devkit.simulator.model import CancelResponse, Company, NpsResponse

CANCEL_HEADER = (
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
NPS_HEADER = ("response_id", "submitted_at", "email", "score", "comment")
REDELIVER_EVERY = 4
BAD_EVERY = 40  # company index % BAD_EVERY picks the kind in BAD_ROWS
BAD_ROWS = {5: "survey_bad_date", 6: "nps_bad_date", 7: "nps_score_out_of_range"}
BAD_DATES = ("yesterday", "31/02/2024 10:00", "2024-02-30T10:00:00Z")
BOM = "\ufeff"


def cancellation_row(response: CancelResponse) -> list[str]:
    suffix, offset = response.offset
    return [
        response.response_id,
        iso(response.submitted_at, offset, suffix),
        response.email,
        response.subscription_id,
        response.primary_reason,
        response.reason_text,
        response.offer_presented,
        "true" if response.offer_accepted else "false",
        response.outcome,
    ]


def nps_row(answer: NpsResponse) -> list[str]:
    suffix, offset = answer.offset
    return [
        answer.response_id,
        iso(answer.submitted_at, offset, suffix),
        answer.email,
        str(answer.score),
        answer.comment,
    ]


def _bad_rows(company: Company, as_of: int) -> tuple[list, list]:
    """Extra rows of one known bad kind for every BAD_EVERY-th company: (sort key, row)."""
    kind = BAD_ROWS.get(company.index % BAD_EVERY)
    if kind is None:
        return [], []
    moment = min(company.billing_customers[0].created + 10 * DAY, as_of - DAY)
    email = company.billing_customers[0].email.strip().lower()
    variant = BAD_DATES[(company.index // BAD_EVERY) % len(BAD_DATES)]
    good_time = iso(moment)
    if kind == "survey_bad_date":
        sub = company.subscriptions[0].id if company.subscriptions else ""
        row = [
            f"resp_{company.index:06d}900",
            variant,
            email,
            sub,
            "other",
            "n/a",
            "none",
            "false",
            "canceled",
        ]
        return [((moment, row[0]), row, kind)], []
    if kind == "nps_bad_date":
        row = [f"nps_{company.index:06d}900", variant, email, "7", ""]
    else:
        row = [f"nps_{company.index:06d}901", good_time, email, "11", "best tool ever!!"]
    return [], [((moment, row[0]), row, kind)]


def _csv_text(header, rows, bom: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return ((BOM if bom else "") + buffer.getvalue()).encode("utf-8")


def write_surveys(root: Path, chunk: int, companies: list[Company], as_of: int) -> Counter:
    counts: Counter = Counter()
    cancel, nps = [], []
    for company in companies:
        cancel += [
            ((r.submitted_at, r.response_id), cancellation_row(r), None)
            for r in company.cancel_responses
        ]
        nps += [((n.submitted_at, n.response_id), nps_row(n), None) for n in company.nps_responses]
        bad_cancel, bad_nps = _bad_rows(company, as_of)
        cancel += bad_cancel
        nps += bad_nps
    for key, rows in (("cancellation", cancel), ("nps", nps)):
        rows.sort(key=lambda item: item[0])
        counts[f"survey_{key}_rows"] += sum(kind is None for _, _, kind in rows)
        counts.update(kind for _, _, kind in rows if kind)
    counts["multiline_survey_answers"] = sum("\n" in row[5] for _, row, _ in cancel)
    name = f"responses-{chunk:04d}"
    if cancel:
        data = _csv_text(CANCEL_HEADER, [row for _, row, _ in cancel], bom=True)
        _write(root / "cancellation" / f"{name}.csv", data)
        if chunk % REDELIVER_EVERY == 0:  # the same file landed again, later-named
            _write(root / "cancellation" / f"{name}.redelivered.csv", data)
            counts["redelivered_survey_rows"] += sum(kind is None for _, _, kind in cancel)
    if nps:
        _write(root / "nps" / f"{name}.csv", _csv_text(NPS_HEADER, [r for _, r, _ in nps], False))
    return counts


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
