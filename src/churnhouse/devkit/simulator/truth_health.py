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
of `dbt_project/README.md` and compares.
"""

from __future__ import annotations

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
