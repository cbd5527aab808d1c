"""Compare issue 11's marts with the simulator's truth.

`health_signals.csv` holds every customer's raw health signals at every month close
(and so at as_of), from the simulator's records; they are scored here by the rules of
`docs/metrics.md` (thresholds: the vars' defaults in `dbt_project.yml`) into the
expected `customer_health`, `customer_health_monthly` and, with `churn_events.csv`,
`risk_backtest`.

The truth files `customer_months.csv` (each customer's exact MRR at every month close)
and `churn_mrr.csv` (each churn's exact MRR lost), with `churn_events.csv`, are turned
into the expected `cohort_retention`, `customer_ltv`, `revenue_concentration`,
`churn_drivers` and (with `customer_nps.csv` and the seeds) `loyalty_spend_segments`
by the definitions of `docs/metrics.md`, here in Python with exact decimals,
then compared like the other marts (counts equal, rates within 1e-9,
money to the cent).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

from churnhouse.devkit.acceptance import Comparison, Fetch, _compare, _read_table, _read_truth
from churnhouse.devkit.simulator import bundle_as_of
from churnhouse.warehouse import Warehouse, checked_identifier

CENT = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True)
class CustomerMonth:
    key: str
    month: str  # YYYY-MM-01
    segment: str
    cohort: str  # month of the first active instant
    starting_mrr: Decimal  # MRR at the first active instant
    mrr_start: Decimal  # MRR at the previous close (0 in the customer's first month)
    mrr_end: Decimal

    @property
    def is_churned(self) -> bool:
        return self.mrr_start > 0 and self.mrr_end == 0


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _ratio(numerator, denominator) -> str:
    if denominator == 0:
        return ""
    with localcontext() as context:
        context.prec = 60
        return repr(float(Decimal(numerator) / Decimal(denominator)))


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7])


def customer_months(bundle: Path) -> list[CustomerMonth]:
    rows = sorted(
        _read_truth(bundle, "customer_months"), key=lambda r: (r["customer_key"], r["month"])
    )
    months, previous = [], {}
    for row in rows:
        key, mrr = row["customer_key"], Decimal(row["mrr_close"])
        months.append(
            CustomerMonth(
                key,
                row["month"],
                row["segment"],
                row["first_active_at"][:7] + "-01",
                Decimal(row["starting_mrr"]),
                previous.get(key, ZERO),
                mrr,
            )
        )
        previous[key] = mrr
    return months


def expected_cohort_retention(months: list[CustomerMonth]) -> list[dict]:
    cells: dict[tuple[str, str], list[CustomerMonth]] = defaultdict(list)
    for row in months:
        cells[row.cohort, row.month].append(row)
    expected = []
    for (cohort, month), rows in sorted(cells.items()):
        start = sum((r.starting_mrr for r in rows), ZERO)
        active = rows if month == cohort else [r for r in rows if r.mrr_end > 0]
        mrr = start if month == cohort else sum((r.mrr_end for r in active), ZERO)
        expected.append(
            {
                "cohort_month": cohort,
                "months_since_start": str(_months_between(cohort, month)),
                "cohort_customers": str(len(rows)),
                "customers_active": str(len(active)),
                "logo_retention": repr(len(active) / len(rows)),
                "mrr": _money(mrr),
                "cohort_start_mrr": _money(start),
                "revenue_retention": _ratio(mrr, start),
            }
        )
    return expected


def expected_revenue_concentration(months: list[CustomerMonth]) -> list[dict]:
    by_month: dict[str, list[CustomerMonth]] = defaultdict(list)
    for row in months:
        by_month[row.month].append(row)
    expected, previous_top = [], set()
    for month in sorted(by_month):
        active = sorted(
            (r for r in by_month[month] if r.mrr_end > 0), key=lambda r: (-r.mrr_end, r.key)
        )
        total = sum((r.mrr_end for r in active), ZERO)
        top = active[: (len(active) + 4) // 5]
        needed, running = 0, ZERO
        for row in active:
            if running < Decimal("0.8") * total:
                needed += 1
            running += row.mrr_end
        churned = [r for r in by_month[month] if r.is_churned]
        churned_mrr = sum((r.mrr_start for r in churned), ZERO)
        top_churned = sum((r.mrr_start for r in churned if r.key in previous_top), ZERO)
        expected.append(
            {
                "month": month,
                "active_customers": str(len(active)),
                "mrr": _money(total),
                "top_20pct_mrr_share": _ratio(sum((r.mrr_end for r in top), ZERO), total),
                "top_20pct_churned_mrr_share": _ratio(top_churned, churned_mrr),
                "churned_mrr": _money(churned_mrr),
                "customers_for_80pct_mrr": str(needed),
            }
        )
        previous_top = {r.key for r in top}
    return expected


def _exact_quotient(numerator: Decimal, denominator: int) -> Decimal:
    """As the SQL does: the exact quotient rounded half-up to 12 places, then to the cent."""
    with localcontext() as context:
        context.prec = 80
        return (numerator / denominator).quantize(Decimal("1E-12"), rounding=ROUND_HALF_UP)


def expected_customer_ltv(months: list[CustomerMonth]) -> list[dict]:
    lifetime: dict[str, Decimal] = defaultdict(lambda: ZERO)
    cells: dict[tuple[str, str], dict] = {}
    for row in sorted(months, key=lambda r: (r.key, r.month)):
        lifetime[row.key] += row.mrr_start
        for segment in (row.segment, "all"):
            cell = cells.setdefault(
                (segment, row.month),
                {"start": 0, "end": 0, "churned": 0, "mrr": ZERO, "realised": ZERO},
            )
            cell["start"] += row.mrr_start > 0
            cell["end"] += row.mrr_end > 0
            cell["mrr"] += row.mrr_end if row.mrr_end > 0 else ZERO
            if row.is_churned:
                cell["churned"] += 1
                cell["realised"] += lifetime[row.key]
    expected = []
    for (segment, month), cell in sorted(cells.items()):
        window = [
            cells[segment, other]
            for (seg, other) in cells
            if seg == segment and 0 <= _months_between(other, month) < 12
        ]
        churned_12m = sum(c["churned"] for c in window)
        start_12m = sum(c["start"] for c in window)
        customers, mrr = cell["end"], cell["mrr"]
        expected.append(
            {
                "month": month,
                "segment": segment,
                "customers": str(customers),
                "mrr": _money(mrr),
                "arpa": _money(_exact_quotient(mrr, customers)) if customers else "",
                "churned_customers_12m": str(churned_12m),
                "customers_start_12m": str(start_12m),
                "logo_churn_rate_12m": _ratio(churned_12m, start_12m),
                "ltv": _money(_exact_quotient(mrr * start_12m, customers * churned_12m))
                if customers and churned_12m
                else "",
                "churned_customers": str(cell["churned"]),
                "realised_revenue_churned": _money(
                    _exact_quotient(cell["realised"], cell["churned"])
                )
                if cell["churned"]
                else "",
            }
        )
    return expected


def expected_churn_drivers(bundle: Path) -> list[dict]:
    lost = {
        (r["customer_key"], r["churned_at"]): Decimal(r["mrr_lost"])
        for r in _read_truth(bundle, "churn_mrr")
    }
    cells: dict[tuple[str, str], dict] = {}
    for churn in _read_truth(bundle, "churn_events"):
        at = churn["churned_at"]
        quarter = f"{at[:4]}-Q{(int(at[5:7]) - 1) // 3 + 1}"
        for period in (quarter, "all"):
            cell = cells.setdefault(
                (period, churn["reason_category"]),
                {"churns": 0, "mrr": ZERO, "tenure": 0, "influenceable": 0},
            )
            cell["churns"] += 1
            cell["mrr"] += lost[churn["customer_key"], at]
            cell["tenure"] += int(churn["tenure_days"])
            cell["influenceable"] += churn["is_influenceable"] == "true"
    totals: dict[str, dict] = defaultdict(lambda: {"churns": 0, "mrr": ZERO})
    for (period, _), cell in cells.items():
        totals[period]["churns"] += cell["churns"]
        totals[period]["mrr"] += cell["mrr"]
    scored = []
    for (period, category), cell in cells.items():
        churn_share = cell["churns"] / totals[period]["churns"]
        mrr_share = float(_ratio(cell["mrr"], totals[period]["mrr"]))
        influenceable = cell["influenceable"] / cell["churns"]
        scored.append((period, category, cell, churn_share, mrr_share, influenceable))
    expected, ranks = [], defaultdict(int)
    for period, category, cell, churn_share, mrr_share, influenceable in sorted(
        scored, key=lambda s: (s[0], -(s[3] * s[4] * s[5]), -s[2]["mrr"], s[1])
    ):
        ranks[period] += 1
        expected.append(
            {
                "period": period,
                "reason_category": category,
                "churns": str(cell["churns"]),
                "churn_share": repr(churn_share),
                "churned_mrr": _money(cell["mrr"]),
                "churned_mrr_share": repr(mrr_share),
                "mean_tenure_days": repr(cell["tenure"] / cell["churns"]),
                "influenceable_share": repr(influenceable),
                "priority_score": repr(churn_share * mrr_share * influenceable),
                "priority_rank": str(ranks[period]),
            }
        )
    return expected


HORIZON = timedelta(days=90)


def _seed(name: str) -> list[dict]:
    from churnhouse.config import dbt_project_dir

    with open(dbt_project_dir() / "seeds" / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _close_of(month: str) -> datetime:
    year, number = int(month[:4]), int(month[5:7])
    return datetime(year + number // 12, number % 12 + 1, 1)


def expected_loyalty_spend(months: list[CustomerMonth], bundle: Path, as_of) -> list[dict]:
    answers: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for row in _read_truth(bundle, "customer_nps"):
        answers[row["customer_key"]].append(
            (_instant(row["submitted_at"]), row["response_id"], row["nps_class"])
        )
    churns: dict[str, list[datetime]] = defaultdict(list)
    for row in _read_truth(bundle, "churn_events"):
        churns[row["customer_key"]].append(_instant(row["churned_at"]))
    tiers = [
        (t["spend_tier"], Decimal(t["min_mrr"]), Decimal(t["max_mrr"]) if t["max_mrr"] else None)
        for t in _seed("spend_tiers")
    ]
    cells: dict[tuple[str, str, str], dict] = defaultdict(lambda: {"n": 0, "mrr": ZERO, "gone": 0})
    for row in months:
        if row.mrr_end <= 0:
            continue
        close = _close_of(row.month)
        before = [a for a in answers[row.key] if a[0] < close]
        latest = max(before)[2] if before else "no answer"
        tier = next(
            name
            for name, low, high in tiers
            if low <= row.mrr_end and (high is None or row.mrr_end < high)
        )
        cell = cells[row.month, latest, tier]
        cell["n"] += 1
        cell["mrr"] += row.mrr_end
        cell["gone"] += any(close <= at < close + HORIZON for at in churns[row.key])
    expected = []
    for month in sorted({row.month for row in months}):
        complete = _close_of(month) + HORIZON <= as_of
        for action in _seed("loyalty_spend_actions"):
            cell = cells.get((month, action["nps_class"], action["spend_tier"]))
            n = cell["n"] if cell else 0
            expected.append(
                {
                    "month": month,
                    "nps_class": action["nps_class"],
                    "spend_tier": action["spend_tier"],
                    "customers": str(n),
                    "mrr": _money(cell["mrr"] if cell else ZERO),
                    "churn_rate_next_90d": repr(cell["gone"] / n) if complete and n else "",
                    "suggested_action": action["suggested_action"],
                }
            )
    return expected


def _team_of(user_id: str) -> str:
    from churnhouse.devkit.simulator.staff import TEAM_IDS

    return next((team for team, ids in TEAM_IDS.items() if user_id in ids), "")


def _vars() -> dict:
    import yaml

    from churnhouse.config import dbt_project_dir

    return yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text())["vars"]


def _int(text: str) -> int | None:
    return int(text) if text != "" else None


def _change(now: Decimal, before: Decimal) -> float | None:
    return float(_ratio(now - before, before)) if before != 0 else None


def scored_health(bundle: Path) -> list[dict]:
    """The truth's raw signals scored by the rules of docs/metrics.md (Customer health)."""
    v = _vars()
    rows = []
    for raw in _read_truth(bundle, "health_signals"):
        days, users, previous = (
            _int(raw["days_since_last_activity"]),
            _int(raw["active_users_30d"]),
            _int(raw["active_users_prev_30d"]),
        )
        seats, failed = _int(raw["paid_seats"]), _int(raw["failed_charges_30d"])
        complaints, contact = _int(raw["complaints_90d"]), _int(raw["days_since_last_contact"])
        saved, score = int(raw["saved_cancellations_90d"]), _int(raw["nps_score"])
        now, ago = Decimal(raw["mrr_now"]), Decimal(raw["mrr_90d_ago"])
        year, year_before = Decimal(raw["mrr_year_ago"]), Decimal(raw["mrr_year_ago_90d_before"])
        seat_use = users / seats if users is not None and seats else None
        change, baseline = _change(now, ago), _change(year, year_before)
        past_due = {"true": True, "false": False, "": None}[raw["has_past_due_subscription"]]
        drop = float(v["health_spend_drop_share"])
        if baseline is not None:
            spend = change is not None and change - baseline <= -drop
        else:
            spend = change is not None and change <= -drop
        fired = {
            "inactive": days is not None and days >= v["health_inactive_days"],
            "usage": bool(previous)
            and users <= (1 - float(v["health_usage_drop_share"])) * previous,
            "seats": seat_use is not None and seat_use < float(v["health_seat_use_below"]),
            "spend": spend,
            "payment": bool(failed) or bool(past_due),
            "detractor": raw["nps_class"] == "detractor",
            "complaint": bool(complaints),
            "saved": saved > 0,
            "contact": contact is not None and contact > v["health_no_contact_days"],
        }
        reasons = [
            fired["inactive"] and f"no product activity for {days} days",
            fired["usage"] and f"active users down from {previous} to {users}",
            fired["seats"] and f"{users} of {seats} paid seats active",
            spend
            and baseline is not None
            and "MRR change over 90 days well below the same season a year ago",
            spend and baseline is None and "MRR down over 90 days",
            bool(failed) and f"{failed} failed charge(s) in 30 days",
            bool(past_due) and "subscription past due",
            fired["detractor"] and f"NPS detractor (score {score})",
            fired["complaint"] and f"{complaints} complaint(s) in 90 days",
            fired["saved"] and "cancellation saved in the last 90 days",
            fired["contact"] and f"no call, meeting or QBR for {contact} days",
        ]
        count = sum(fired.values())
        level = "high" if count >= v["health_high_signals"] else "medium" if count else "low"
        rows.append(
            {
                **raw,
                "owner_team": _team_of(raw["owner_id"]) if raw["owner_id"] else "",
                "csm_team": _team_of(raw["csm_id"]) if raw["csm_id"] else "",
                "signals_fired": str(count),
                "risk_level": level,
                "risk_reasons": "; ".join(r for r in reasons if r),
                "seat_use": "" if seat_use is None else repr(seat_use),
                "mrr_change_90d": "" if change is None else repr(change),
                "mrr_change_yoy": "" if _change(now, year) is None else repr(_change(now, year)),
                "mrr_change_90d_year_ago": "" if baseline is None else repr(baseline),
                "mrr_now_exact": raw["mrr_now"],
                "mrr_now": _money(now),
                "mrr_90d_ago": _money(ago),
                "mrr_year_ago": _money(year),
            }
        )
    return rows


def expected_risk_backtest(health: list[dict], bundle: Path, as_of: datetime) -> list[dict]:
    churns: dict[str, list[datetime]] = defaultdict(list)
    for row in _read_truth(bundle, "churn_events"):
        churns[row["customer_key"]].append(_instant(row["churned_at"]))
    by_month: dict[str, list[dict]] = defaultdict(list)
    for row in health:
        by_month[row["month"]].append(row)
    expected = []
    for month, rows in sorted(by_month.items()):
        close = _instant(rows[0]["evaluated_at"])
        complete = close + HORIZON <= as_of
        gone = [
            r
            for r in rows
            if any(close <= at < close + HORIZON for at in churns[r["customer_key"]])
        ]
        flagged = [r for r in rows if r["risk_level"] == "high"]
        hits = [r for r in gone if r["risk_level"] == "high"]
        precision = len(hits) / len(flagged) if flagged else None
        base = len(gone) / len(rows)
        lost = sum((Decimal(r["mrr_now_exact"]) for r in gone), ZERO)
        lost_flagged = sum((Decimal(r["mrr_now_exact"]) for r in hits), ZERO)

        def known(value, complete=complete) -> str:
            return "" if not complete or value is None else str(value)

        expected.append(
            {
                "month": month,
                "active_customers": str(len(rows)),
                "flagged_customers": str(len(flagged)),
                "churned_customers": known(len(gone)),
                "churned_flagged": known(len(hits)),
                "churned_not_flagged": known(len(gone) - len(hits)),
                "precision_rate": known(repr(precision) if precision is not None else None),
                "recall_rate": known(repr(len(hits) / len(gone)) if gone else None),
                "lift": known(repr(precision / base) if precision is not None and base else None),
                "flagged_churned_mrr_share": known(_ratio(lost_flagged, lost) or None),
            }
        )
    return expected


HEALTH_EXACT = (
    "risk_level",
    "risk_reasons",
    "signals_fired",
    "days_since_last_activity",
    "active_users_30d",
    "active_users_prev_30d",
    "paid_seats",
    "failed_charges_30d",
    "has_past_due_subscription",
    "nps_class",
    "nps_score",
    "complaints_90d",
    "saved_cancellations_90d",
    "days_since_last_contact",
    "workspace_id",
    "owner_id",
    "owner_team",
    "csm_id",
    "csm_team",
)
HEALTH_MONEY = ("mrr_now", "mrr_90d_ago", "mrr_year_ago")
HEALTH_RATES = ("seat_use", "mrr_change_90d", "mrr_change_yoy", "mrr_change_90d_year_ago")


def _compare_customer_health(fetch: Fetch, bundle: Path) -> list[Comparison]:
    health = scored_health(bundle)
    as_of = bundle_as_of(bundle)
    at_as_of = [r for r in health if _instant(r["evaluated_at"]) == as_of]
    columns = HEALTH_EXACT + HEALTH_MONEY + HEALTH_RATES
    backtest_columns = (
        "active_customers",
        "flagged_customers",
        "churned_customers",
        "churned_flagged",
        "churned_not_flagged",
    )
    backtest_rates = ("precision_rate", "recall_rate", "lift", "flagged_churned_mrr_share")
    return [
        _compare(
            "customer_health",
            at_as_of,
            _read_table(fetch, "customer_health", ("customer_key",) + columns),
            ("customer_key",),
            HEALTH_EXACT,
            HEALTH_MONEY,
            HEALTH_RATES,
        ),
        _compare(
            "customer_health_monthly",
            health,
            _read_table(fetch, "customer_health_monthly", ("customer_key", "month") + columns),
            ("customer_key", "month"),
            HEALTH_EXACT,
            HEALTH_MONEY,
            HEALTH_RATES,
        ),
        _compare(
            "risk_backtest",
            expected_risk_backtest(health, bundle, as_of),
            _read_table(fetch, "risk_backtest", ("month",) + backtest_columns + backtest_rates),
            ("month",),
            backtest_columns,
            (),
            backtest_rates,
        ),
    ]


# table → (key, exact columns, money columns, rate columns)
TABLES = {
    "cohort_retention": (
        ("cohort_month", "months_since_start"),
        ("cohort_customers", "customers_active"),
        ("mrr", "cohort_start_mrr"),
        ("logo_retention", "revenue_retention"),
    ),
    "revenue_concentration": (
        ("month",),
        ("active_customers", "customers_for_80pct_mrr"),
        ("mrr", "churned_mrr"),
        ("top_20pct_mrr_share", "top_20pct_churned_mrr_share"),
    ),
    "customer_ltv": (
        ("month", "segment"),
        ("customers", "churned_customers_12m", "customers_start_12m", "churned_customers"),
        ("mrr", "arpa", "ltv", "realised_revenue_churned"),
        ("logo_churn_rate_12m",),
    ),
    "churn_drivers": (
        ("period", "reason_category"),
        ("churns", "priority_rank"),
        ("churned_mrr",),
        (
            "churn_share",
            "churned_mrr_share",
            "mean_tenure_days",
            "influenceable_share",
            "priority_score",
        ),
    ),
    "loyalty_spend_segments": (
        ("month", "nps_class", "spend_tier"),
        ("customers", "suggested_action"),
        ("mrr",),
        ("churn_rate_next_90d",),
    ),
}


def _compare_health_tables(fetch: Fetch, bundle: Path) -> list[Comparison]:
    months = customer_months(bundle)
    expected = {
        "cohort_retention": expected_cohort_retention(months),
        "revenue_concentration": expected_revenue_concentration(months),
        "customer_ltv": expected_customer_ltv(months),
        "churn_drivers": expected_churn_drivers(bundle),
        "loyalty_spend_segments": expected_loyalty_spend(months, bundle, bundle_as_of(bundle)),
    }
    comparisons = _compare_customer_health(fetch, bundle)
    for table, (key, exact, money, rates) in TABLES.items():
        pipeline = _read_table(fetch, table, key + exact + money + rates)
        comparisons.append(_compare(table, expected[table], pipeline, key, exact, money, rates))
    return comparisons


def compare_health_with_truth(
    warehouse: Warehouse, bundle: Path, schema: str = "analytics"
) -> list[Comparison]:
    """cohort_retention, revenue_concentration, customer_ltv, churn_drivers and
    loyalty_spend_segments in `schema` against the truth."""
    prefix = f"{checked_identifier(schema)}."

    def fetch(sql: str) -> list[tuple]:
        with warehouse.transaction() as tx:
            return tx.fetchall(sql.format(schema=prefix))

    return _compare_health_tables(fetch, Path(bundle))


def compare_published_health_with_truth(warehouse: Warehouse, bundle: Path) -> list[Comparison]:
    """The same check on the published tables, read the way a BI user reads them."""
    from churnhouse.query import run_query

    return _compare_health_tables(
        lambda sql: run_query(warehouse, sql.format(schema=""))[1], Path(bundle)
    )
