"""One chunk of companies: built, its events and survey files written, its truth computed.

A chunk depends only on (settings, chunk number), so chunks can run in worker
processes; the caller appends what they return (billing lines, CRM rows,
truth rows) in chunk order, which keeps every output byte deterministic.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path

from churnhouse.devkit.simulator.billing import StripeShape, billing_lines
from churnhouse.devkit.simulator.clock import Calendar
from churnhouse.devkit.simulator.company import build_company
from churnhouse.devkit.simulator.crm import crm_rows
from churnhouse.devkit.simulator.events import write_events
from churnhouse.devkit.simulator.fx import fx_rates
from churnhouse.devkit.simulator.model import Company
from churnhouse.devkit.simulator.surveys import write_surveys
from churnhouse.devkit.simulator.truth import (
    FREE_MAIL,
    MonthlyTruth,
    company_records,
    company_truth,
    email_domain,
)
from churnhouse.devkit.simulator.truth_health import (
    churn_mrr_rows,
    customer_month_rows,
    customer_nps_rows,
    health_signal_rows,
)
from churnhouse.devkit.simulator.truth_marts import COMPANY_TABLES, NpsTruth
from churnhouse.devkit.stripe_shapes import CURRENT_API_VERSION


@dataclass(frozen=True)
class Settings:
    out: Path
    customers: int
    months: int
    start: str
    seed: int
    chunk_size: int
    stripe_api_version: str = CURRENT_API_VERSION
    stripe_upgrade_at: int | None = None  # Unix seconds of the account's upgrade, if any
    events_style: str = "wire"  # Segment key style: wire (camelCase) or warehouse (snake_case)

    @cached_property
    def calendar(self) -> Calendar:
        return Calendar.from_start(self.start, self.months)

    @property
    def stripe_shape(self) -> StripeShape:
        return StripeShape(self.stripe_api_version, self.stripe_upgrade_at, self.seed)

    @property
    def chunks(self) -> int:
        return -(-self.customers // self.chunk_size)

    def indexes(self, number: int) -> range:
        return range(number * self.chunk_size, min(self.customers, (number + 1) * self.chunk_size))


@dataclass
class ChunkResult:
    number: int
    billing: dict[str, list[str]]
    crm: dict[str, list[dict]]
    monthly: MonthlyTruth
    churns: list[list[str]] = field(default_factory=list)
    saves: list[list[str]] = field(default_factory=list)
    identity: list[list[str]] = field(default_factory=list)
    customer_months: list[list[str]] = field(default_factory=list)
    churn_mrr: list[list[str]] = field(default_factory=list)
    customer_nps: list[list[str]] = field(default_factory=list)
    health_signals: list[list[str]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    # truth_marts: rows of each per-company mart table, and the NPS sums
    marts: dict[str, list[list[str]]] = field(
        default_factory=lambda: {name: [] for name in COMPANY_TABLES}
    )
    nps: NpsTruth = field(default_factory=NpsTruth)


def build_chunk(settings: Settings, number: int) -> ChunkResult:
    started = time.monotonic()
    calendar = settings.calendar
    rates = {key: Decimal(rate) for key, rate in fx_rates(settings.seed, calendar).items()}
    companies = [build_company(settings.seed, i, calendar) for i in settings.indexes(number)]
    counts = write_events(
        settings.out / "events", number, companies, settings.seed, calendar, settings.events_style
    )
    counts.update(write_surveys(settings.out / "surveys", number, companies, calendar.as_of))
    billing = billing_lines(companies, settings.stripe_shape)
    result = ChunkResult(number, billing, crm_rows(companies), MonthlyTruth())
    for company in companies:
        truth = company_truth(company, rates, calendar, result.monthly, result.nps)
        for name, rows in truth.marts.items():
            result.marts[name] += rows
        result.churns += truth.churns
        result.saves += truth.saves
        result.identity += truth.identity
        counts["unmatched_billing_customers"] += truth.unmatched
        _add_health_truth(result, company, rates, calendar)
    counts.update(company_counts(companies))
    counts["billing_invoice_lines_cut_short"] = len(billing["invoice_lines"])
    counts["churns"], counts["saves"] = len(result.churns), len(result.saves)
    result.counts = counts
    result.seconds = time.monotonic() - started
    return result


def _add_health_truth(result: ChunkResult, company: Company, rates, calendar: Calendar) -> None:
    """The truth files of issue 11's marts (truth_health)."""
    records = company_records(company, rates, calendar)
    result.customer_months += customer_month_rows(records, calendar)
    result.churn_mrr += churn_mrr_rows(records, calendar.as_of)
    result.customer_nps += customer_nps_rows(records, calendar.as_of)
    result.health_signals += health_signal_rows(records, rates, calendar)


def company_counts(companies: list[Company]) -> Counter:
    counts: Counter = Counter(companies=len(companies))
    for company in companies:
        # what customers.jsonl holds: deleted customers left out of the list are not in it
        customers = [c for c in company.billing_customers if c.listed]
        counts["billing_customers"] += len(customers)
        counts["billing_customers_unlisted"] += len(company.billing_customers) - len(customers)
        counts["billing_discounted_lines"] += sum(
            bool(line.discounts) for invoice in company.invoices for line in invoice.lines
        )
        counts["billing_subscriptions"] += len(company.subscriptions)
        counts["billing_invoices"] += len(company.invoices)
        counts["billing_charges"] += len(company.charges)
        counts["billing_customers_missing_crm_id"] += sum(not c.crm_account_id for c in customers)
        counts["free_mail_customers"] += sum(
            email_domain(c.email.strip().lower()) in FREE_MAIL for c in customers
        )
        counts["messy_emails"] += company.messy_emails
        counts["activity_events"] += len(company.activity_times)
        counts["survey_responses_saved"] += sum(
            r.outcome == "saved" for r in company.cancel_responses
        )
        if company.account is not None:
            counts["crm_accounts"] += 1
            counts["crm_contacts"] += len(company.contacts)
            counts["crm_activities"] += len(company.activities)
            counts["crm_accounts_deleted"] += company.account.is_deleted
    return counts
