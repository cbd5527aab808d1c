"""The Data Docs index lists the newest CHURN_DATA_DOCS_INDEX_LIMIT validations (GE reads
every listed result to build it, once per gate); every validation's own page is kept."""

from __future__ import annotations

import pandas as pd

from churnhouse.gates.data_docs import data_docs_dir
from churnhouse.gates.runner import Validator


def test_the_index_lists_only_the_newest_validations(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_HOME", str(tmp_path))
    monkeypatch.setenv("CHURN_DATA_DOCS_INDEX_LIMIT", "2")
    names = ["night_1", "night_2", "night_3"]
    for name in names:  # one gate per night, one suite each
        validator = Validator(f"run-{name}")
        expectation = validator.gx.expectations.ExpectColumnValuesToNotBeNull(column="id")
        frame = pd.DataFrame({"id": [1, 2, 3]})
        assert validator.frame(name, frame, [expectation], "calls").success
        validator.finish()

    pages = {page.relative_to(data_docs_dir()).parts[1] for page in _validation_pages()}
    assert pages == set(names)  # every validation keeps its page
    index = (data_docs_dir() / "index.html").read_text()
    listed = [name for name in names if f"validations/{name}/" in index]
    assert listed == ["night_2", "night_3"]


def _validation_pages():
    return (data_docs_dir() / "validations").rglob("*.html")
