"""Ground truth behind the forward-looking marts of issue 11, from the simulator's records.

Two files, written chunk by chunk beside the other truth files:

- `customer_months.csv`: every customer's exact MRR at the close of each reported month
  (from the month of its first active instant to the last month of the calendar), with
  its segment, first active instant and MRR at that instant;
- `churn_mrr.csv`: every churn's exact MRR lost (the monthly amounts of the lines that
  covered the instant just before it);
- `customer_nps.csv`: every NPS answer tied to a customer, with its class.

They are computed from the company's invoice lines (`truth.company_records`), never from
the warehouse; `churnhouse.devkit.acceptance_health` derives `cohort_retention`,
`customer_ltv`, `revenue_concentration`, `churn_drivers` and `loyalty_spend_segments`
from them by the definitions
of `docs/metrics.md` and compares.
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import Decimal

from churnhouse.devkit.simulator.clock import Calendar, month_label, month_start, truth_text
from churnhouse.devkit.simulator.truth import ZERO, CompanyRecords

CUSTOMER_MONTH_COLUMNS = (
    "customer_key",
    "month",
    "segment",
    "first_active_at",
    "starting_mrr",
    "mrr_close",
)
CHURN_MRR_COLUMNS = ("customer_key", "churned_at", "mrr_lost")
CUSTOMER_NPS_COLUMNS = ("customer_key", "response_id", "submitted_at", "nps_class")


def exact(value: Decimal) -> str:
    return format(value, "f")


def customer_month_rows(records: CompanyRecords, calendar: Calendar) -> list[list[str]]:
    """(customer, month) rows with the exact MRR at the month's close."""
    rows = []
    last_month = calendar.first_month + calendar.months - 1
    for key in sorted(records.customers):
        customer = records.customers[key]
        runs = customer.active_runs()
        if not runs:
            continue
        first = runs[0][0]
        starting = exact(customer.mrr_at(first))
        segment, _ = customer.segment_region
        for month in range(calendar.month_of(first), last_month + 1):
            close = month_start(month + 1)
            rows.append(
                [
                    key,
                    f"{month_label(month)}-01",
                    segment,
                    truth_text(first),
                    starting,
                    exact(customer.mrr_at_close(close)),
                ]
            )
    return rows


def churn_mrr_rows(records: CompanyRecords, as_of: int) -> list[list[str]]:
    """(customer, churned_at, exact MRR lost) for every churn at or before as_of."""
    rows = []
    for key in sorted(records.customers):
        customer = records.customers[key]
        for _, churned_at in customer.active_runs():
            if churned_at > as_of:
                continue
            lost = sum((c.monthly for c in customer.lines if c.start < churned_at <= c.end), ZERO)
            rows.append([key, truth_text(churned_at), exact(lost)])
    return rows


def nps_class(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def customer_nps_rows(records: CompanyRecords, as_of: int) -> list[list[str]]:
    """(customer, response, submitted_at, class) for every NPS answer tied to a customer."""
    return [
        [key, answer.response_id, truth_text(answer.submitted_at), nps_class(answer.score)]
        for key in sorted(records.customers)
        for answer in sorted(records.customers[key].nps, key=lambda a: a.response_id)
        if answer.submitted_at <= as_of
    ]


# --- customer health: the raw signals at every close and at as_of -----------------------------

HEALTH_SIGNAL_COLUMNS = (
    "customer_key",
    "evaluated_at",
    "month",
    "crm_account_id",
    "workspace_id",
    "owner_id",
    "csm_id",
    "days_since_last_activity",
    "active_users_30d",
    "active_users_prev_30d",
    "paid_seats",
    "mrr_now",
    "mrr_90d_ago",
    "mrr_year_ago",
    "mrr_year_ago_90d_before",
    "failed_charges_30d",
    "has_past_due_subscription",
    "nps_class",
    "nps_score",
    "complaints_90d",
    "days_since_last_contact",
    "saved_cancellations_90d",
)
CONTACT_TYPES = ("call", "meeting", "qbr")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _seats(records: CompanyRecords, rates, calendar: Calendar) -> dict[str, list[tuple]]:
    """Per customer: (start, end, quantity) of its MRR-contributing lines."""
    from churnhouse.devkit.simulator.truth import MRR_STATUSES, _covering

    seats: dict[str, list[tuple]] = {}
    for invoice in records.company.invoices:
        if invoice.status not in MRR_STATUSES:
            continue
        key = records.tied[invoice.customer][0]
        for line in invoice.lines:
            covering = _covering(line, invoice, records.subscriptions, rates, calendar)
            if covering is not None and covering.monthly > 0:
                seats.setdefault(key, []).append((covering.start, covering.end, line.quantity))
    return seats


def health_signal_rows(records: CompanyRecords, rates, calendar: Calendar) -> list[list[str]]:
    """One row per customer active at a month's close (and as_of, itself a close here)."""
    from churnhouse.devkit.simulator.clock import DAY, months_after

    company, as_of = records.company, calendar.as_of
    seats = _seats(records, rates, calendar)
    closes = [
        (month_start(m + 1), m)
        for m in range(calendar.first_month, calendar.first_month + calendar.months)
    ]
    account = company.account
    user_days = sorted(company.active_user_days) if account and account.workspace_id else []
    active_days = [day for day, _ in user_days]
    contacts = (
        [a.occurred_at for a in company.activities if a.type in CONTACT_TYPES] if account else []
    )

    def users_between(first: int, stop: int) -> int:
        low, high = bisect_left(active_days, first), bisect_left(active_days, stop)
        return len({user for _, user in user_days[low:high]})

    rows = []
    for key in sorted(records.customers):
        customer = records.customers[key]
        own_account = customer.account
        billing_ids = {bc for bc, (k, _) in records.tied.items() if k == key}
        charges = [c for c in company.charges if c.customer in billing_ids]
        subscriptions = [s for s in company.subscriptions if s.customer in billing_ids]
        for close, month in closes:
            now = customer.mrr_at_close(close)
            if now <= 0:
                continue
            day = close // DAY
            before_day = bisect_left(active_days, day) if own_account else 0
            last = active_days[before_day - 1] if before_day else None
            quantities = [q for s, e, q in seats.get(key, []) if s < close <= e]
            year_ago = months_after(close, -12)
            before = [c for c in charges if c.created < close]
            answers = [a for a in customer.nps if a.submitted_at < close]
            latest = (
                max(answers, key=lambda a: (a.submitted_at, a.response_id)) if answers else None
            )
            touched = [t for t in contacts if t < close] if own_account else []
            rows.append(
                [
                    key,
                    truth_text(close),
                    f"{month_label(month)}-01",
                    own_account.account_id if own_account else "",
                    (own_account.workspace_id or "") if own_account else "",
                    own_account.owner_id if own_account else "",
                    (own_account.csm_id or "") if own_account else "",
                    _text(day - last if last is not None else None),
                    _text(users_between(day - 30, day) if last is not None else None),
                    _text(users_between(day - 60, day - 30) if last is not None else None),
                    _text(max(quantities) if quantities else None),
                    exact(now),
                    exact(customer.mrr_at_close(close - 90 * DAY)),
                    exact(customer.mrr_at_close(year_ago)),
                    exact(customer.mrr_at_close(year_ago - 90 * DAY)),
                    _text(
                        sum(c.status == "failed" and c.created >= close - 30 * DAY for c in before)
                        if before
                        else None
                    ),
                    _text(
                        any(s.status in ("past_due", "unpaid") for s in subscriptions)
                        if close == as_of
                        else None
                    ),
                    nps_class(latest.score) if latest else "",
                    _text(latest.score if latest else None),
                    _text(
                        sum(close - 90 * DAY <= c[0] < close for c in customer.complaints)
                        if own_account
                        else None
                    ),
                    _text(day - max(touched) // DAY if touched else None),
                    str(
                        sum(
                            r.outcome == "saved" and close - 90 * DAY <= r.submitted_at < close
                            for r in customer.responses
                        )
                    ),
                ]
            )
    return rows
