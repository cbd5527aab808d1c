"""The forward-looking part of `make demo`'s summary: who to call, what to fix first,
the loyalty x spend grid, and how far the at-risk list can be trusted (risk_backtest).

Portable SQL: the same summary reads DuckDB's published file or PostgreSQL's schema.
"""

from __future__ import annotations

AT_RISK_SQL = """
SELECT customer_key, signals_fired AS signals, mrr_now, coalesce(csm_id, owner_id) AS owner,
       risk_reasons
FROM customer_health WHERE risk_level = 'high'
ORDER BY signals_fired DESC, mrr_now DESC, customer_key LIMIT 5
"""

DRIVERS_SQL = """
SELECT priority_rank AS rank, reason_category, churns,
       CAST(100 * churn_share AS NUMERIC(7, 1)) AS churn_pct, churned_mrr,
       CAST(100 * influenceable_share AS NUMERIC(7, 1)) AS influenceable_pct,
       CAST(priority_score AS NUMERIC(9, 4)) AS priority
FROM churn_drivers WHERE period = 'all' ORDER BY priority_rank LIMIT 3
"""

GRID_SQL = """
SELECT nps_class, spend_tier, customers, mrr, suggested_action
FROM loyalty_spend_segments
WHERE month = (SELECT max(month) FROM loyalty_spend_segments)
ORDER BY nps_class, tier_rank
"""

BACKTEST_SQL = """
SELECT sum(active_customers), sum(flagged_customers), sum(churned_customers),
       sum(churned_flagged), count(*)
FROM risk_backtest WHERE is_complete
"""

CLASSES = ("promoter", "passive", "detractor", "no answer")


def backtest_line(active: int, flagged: int, churned: int, churned_flagged: int) -> str:
    """Precision, recall and lift pooled over the months whose 90 days have passed."""
    if not (active and flagged and churned):
        return "not enough history yet (no flagged or churned customer in a complete month)"
    precision = churned_flagged / flagged
    recall = churned_flagged / churned
    base = churned / active
    return (
        f"precision {precision:.1%} ({churned_flagged} of {flagged} flagged churned), "
        f"recall {recall:.1%} (of {churned} churners), base churn rate {base:.1%}, "
        f"lift {precision / base:.2f}x"
    )


def print_actions(warehouse) -> None:
    """Top 5 at-risk customers, top 3 problems, the loyalty x spend grid, the backtest."""
    from churnhouse.query import render, run_query

    for title, sql in (
        ("top 5 at-risk customers (customer_health)", AT_RISK_SQL),
        ("problems to fix first (churn_drivers, all churns)", DRIVERS_SQL),
    ):
        columns, rows = run_query(warehouse, sql)
        print(f"\n{title}:")
        print(render(columns, rows, "table") if rows else "  (none)")

    _, cells = run_query(warehouse, GRID_SQL)
    tiers = list(dict.fromkeys(tier for _, tier, *_ in cells))
    grid = {(cls, tier): (customers, mrr) for cls, tier, customers, mrr, _ in cells}
    print("\nloyalty x spend, last month (customers / MRR):")
    print("  " + f"{'':<10}" + "".join(f"{tier:>20}" for tier in tiers))
    for cls in CLASSES:
        cells_of = [grid.get((cls, t), (0, 0)) for t in tiers]
        line = "".join(f"{customers:>8} / {mrr:>9,.0f}" for customers, mrr in cells_of)
        print(f"  {cls:<10}{line}")
    for cls, tier, customers, _, action in cells:
        if customers and cls == "detractor":
            print(f"  {cls} x {tier}: {action}")

    _, rows = run_query(warehouse, BACKTEST_SQL)
    active, flagged, churned, churned_flagged, months = rows[0]
    print(f"\nrisk_backtest, {months or 0} closes whose 90 days have passed (high -> churned):")
    print("  " + backtest_line(active or 0, flagged or 0, churned or 0, churned_flagged or 0))
