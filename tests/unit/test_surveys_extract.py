"""Surveys: BOM, multi-line quoted Chinese text, re-delivery, and each bad-row kind."""

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from churnhouse.config import SourceSettings
from churnhouse.contracts import ExtractWindow, RunWindow
from churnhouse.sources.surveys import extract

RUN = RunWindow("test", datetime(2024, 9, 1), datetime(2024, 9, 2))


def read_surveys(uri: str):
    extracted = extract(ExtractWindow(RUN, None), SourceSettings("", "", "", surveys_uri=uri))
    return extracted.batches, extracted.bad


EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
HEADER = "response_id,submitted_at,email,subscription_id,primary_reason,reason_text,offer_presented,offer_accepted,outcome\n"


@pytest.fixture
def surveys_root(tmp_path):
    root = tmp_path / "surveys"
    (root / "cancellation").mkdir(parents=True)
    (root / "nps").mkdir()
    bom_file = (
        "\ufeff"
        + HEADER
        + (
            'resp_1,2024-08-30T10:15:00+08:00,OPS@example.com,sub_1,too_expensive,"预算削减,价格太贵\n明年再看",discount,false,canceled\n'
            'resp_2,2024-09-01T09:00:00Z,anna@northwind.io,,,"We switched to a competitor, ""cheaper""",pause,true,saved\n'
            ",2024-09-01T09:00:00Z,x@y.com,,,,none,false,canceled\n"
            "resp_3,31/02/2024,x@y.com,,,,none,false,canceled\n"
            "resp_4,2024-09-01T09:00:00Z,,sub_9,unused,,none,false,canceled\n"
        )
    )
    (root / "cancellation" / "2024-09-01.csv").write_text(bom_file, encoding="utf-8")
    redelivered = (
        HEADER
        + "resp_2,2024-09-01T09:00:00Z,anna@northwind.io,,,changed my mind,pause,true,saved\n"
    )
    (root / "cancellation" / "2024-09-02.csv").write_text(redelivered, encoding="utf-8")
    (root / "nps" / "nps.csv").write_text(
        "response_id,submitted_at,email,score,comment\n"
        'nps_1,2024-07-15T08:00:00Z,li.wei@example.com,4,"Support is slow, 客服回复太慢"\n'
        "nps_2,2024-07-16T11:30:00-05:00,anna@northwind.io,9,\n"
        "nps_3,2024-07-16T11:30:00Z,anna@northwind.io,11,\n"
        "nps_4,not a date,anna@northwind.io,5,\n"
        "nps_5,2024-07-16T11:30:00Z,,5,\n"
        "nps_6,2024-07-16T11:30:00Z,a@b.c,7.5,\n",
        encoding="utf-8",
    )
    return root


def _by_id(batch):
    return {row["response_id"]: row for row in batch.rows.to_pylist()}


def test_cancellations_keep_quoted_multiline_text_and_the_later_file(surveys_root):
    (cancellations, _), _ = read_surveys(str(surveys_root))
    rows = _by_id(cancellations)
    assert sorted(rows) == ["resp_1", "resp_2", "resp_4"]
    assert rows["resp_1"]["reason_text"] == "预算削减,价格太贵\n明年再看"
    assert rows["resp_1"]["submitted_at"] == datetime(2024, 8, 30, 2, 15)
    assert rows["resp_2"]["reason_text"] == "changed my mind", (
        "a re-delivered row replaces the earlier one"
    )
    assert rows["resp_4"]["email"] is None or rows["resp_4"]["email"] == "", (
        "an empty email is kept"
    )


def test_bad_rows_are_quarantined_with_file_row_and_reason(surveys_root):
    _, bad = read_surveys(str(surveys_root))
    reasons = {row.location: row.reason for row in bad}
    assert reasons == {
        "cancellation/2024-09-01.csv:5": "missing response_id",
        "cancellation/2024-09-01.csv:6": "unparseable submitted_at: '31/02/2024'",
        "nps/nps.csv:4": "score not an integer 0-10: '11'",
        "nps/nps.csv:5": "unparseable submitted_at: 'not a date'",
        "nps/nps.csv:6": "missing email",
        "nps/nps.csv:7": "score not an integer 0-10: '7.5'",
    }


def test_nps_scores_and_offsets(surveys_root):
    (_, nps), _ = read_surveys(str(surveys_root))
    rows = _by_id(nps)
    assert sorted(rows) == ["nps_1", "nps_2"]
    assert rows["nps_2"]["submitted_at"] == datetime(2024, 7, 16, 16, 30)
    assert rows["nps_1"]["score"] == 4


def test_the_spec_example_file_loads(tmp_path):
    (tmp_path / "cancellation").mkdir()
    shutil.copy(EXAMPLES / "cancellation-survey.csv", tmp_path / "cancellation" / "a.csv")
    (cancellations, _), bad = read_surveys(str(tmp_path))
    assert bad == []
    assert _by_id(cancellations)["resp_0001"]["reason_text"] == "预算削减,价格太贵\n明年再看"


def test_any_fsspec_location_reads_the_same(surveys_root):
    """An object-store style URI (fsspec's in-memory filesystem stands in for s3:// or gs://)."""
    import fsspec

    memory = fsspec.filesystem("memory")
    for path in surveys_root.rglob("*.csv"):
        memory.pipe(f"memory://landing/surveys/{path.parent.name}/{path.name}", path.read_bytes())
    remote, remote_bad = read_surveys("memory://landing/surveys")
    local, local_bad = read_surveys(str(surveys_root))
    assert [b.rows.num_rows for b in remote] == [b.rows.num_rows for b in local] == [3, 2]
    assert remote_bad == local_bad
