"""`make bench BENCH_ARGS="--events-only --bundle DIR"`: the events ratio alone, on a real
bundle, in fresh processes (the quick loop for work on the events load, issue 14)."""

from __future__ import annotations

import re

import pytest

from churnhouse.devkit import bench
from churnhouse.devkit.simulator import simulate


@pytest.mark.slow
def test_events_only_prints_the_events_ratio_and_the_peak(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    bundle = tmp_path / "bundle"
    simulate(out=bundle, customers=40, months=4, start="2024-01", seed=5, workers=1)

    assert bench.main(["--events-only", "--bundle", str(bundle)]) == 0

    out = capfd.readouterr().out
    loaded = re.search(r"^events load: ([\d,]+) rows in ", out, re.MULTILINE)
    baseline = re.search(r"^baseline DuckDB read_json → table: ([\d,]+) rows", out, re.MULTILINE)
    assert loaded and baseline, out
    # The load keeps one row per message up to the day before the last; the baseline
    # reads every line of every day.
    assert 0 < int(loaded[1].replace(",", "")) < int(baseline[1].replace(",", ""))
    ratio = re.search(r"^events load / baseline = (\d+\.\d\d) \(target ≥ 0.70\)$", out, re.M)
    assert ratio and float(ratio[1]) > 0, out
    assert re.search(r"^peak RSS \d+ MiB .*events load \d+", out, re.MULTILINE), out
    assert not (tmp_path / "home" / "bench" / "events-only").exists()


def test_events_only_is_refused_for_the_big_run(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--events-only", "--customers", "100000"])
    assert "--events-only" in capsys.readouterr().err
