"""The backtest line of `make demo`: precision, recall and lift pooled over complete months."""

from churnhouse.devkit.demo_actions import backtest_line


def test_lift_is_precision_over_the_base_churn_rate():
    line = backtest_line(active=1000, flagged=100, churned=80, churned_flagged=20)
    assert "precision 20.0% (20 of 100 flagged churned)" in line
    assert "recall 25.0% (of 80 churners)" in line
    assert "base churn rate 8.0%" in line
    assert line.endswith("lift 2.50x")


def test_no_flagged_customer_yet_says_so():
    assert backtest_line(active=50, flagged=0, churned=3, churned_flagged=0).startswith(
        "not enough history"
    )
