"""Ground truth: a reference implementation of `metrics.md` on the clean records.

It runs one simulated company at a time (their identities never meet, see
`company.py`) and sums the monthly movements as companies stream past.
Money is exact `Decimal` (monthly amounts kept to 12 fractional digits, so
sums are exact and independent of order), rounded half-up to the cent only
when written; rates are floats of the unrounded ratios.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext

from churnhouse.devkit.seeds import seed_values
from churnhouse.devkit.simulator.clock import DAY, Calendar, month_start, truth_text
from churnhouse.devkit.simulator.model import (
    Account,
    CancelResponse,
    Company,
    NpsResponse,
    Subscription,
)
from churnhouse.devkit.simulator.reasons import (
    Statement,
    archetype,
    billing_statement,
    complaint_statement,
    is_influenceable,
    survey_statement,
)

PLACES = Decimal("1E-12")
CENT = Decimal("0.01")
ZERO = Decimal(0)
# The same lists the dbt models read: the project's seeds.
FREE_MAIL = seed_values("free_mail_domains", "domain")
ZERO_DECIMAL = seed_values("zero_decimal_currencies", "currency")
INTERVAL_SCALE = {"month": (1, 1), "year": (1, 12), "week": (52, 12), "day": (365, 12)}
MRR_STATUSES = ("paid", "open")
COMPLAINT_WINDOW = 90 * DAY
QUIET_WINDOW = 30 * DAY
SAVE_WINDOW = 30 * DAY
UNKNOWN = "unknown"


def normal_email(email: str | None) -> str:
    return (email or "").strip().lower()


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower() if "@" in email else ""


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def ratio(numerator: Decimal, denominator: Decimal) -> str:
    return "" if denominator == 0 else repr(float(numerator / denominator))


# --- identity ----------------------------------------------------------------------------------


def identity(company: Company) -> dict[str, tuple[str, int | None]]:
    """Billing customer id → (customer_key, number of the rule that tied it, None if none).

    A customer left out of the customer list (`listed` false) shows the pipeline only its
    id: rules 1, 3 and 4 need the customer object, so only rule 2 can tie it.
    """
    accounts = [company.account] if company.account else []
    contact_accounts: dict[str, set[str]] = defaultdict(set)
    for contact in company.contacts:
        contact_accounts[normal_email(contact.email)].add(contact.account_id)
    tied = {}
    for customer in company.billing_customers:
        email = normal_email(customer.email)
        domain = email_domain(email)
        candidates = (
            {a.account_id for a in accounts if a.account_id == customer.crm_account_id},
            {a.account_id for a in accounts if a.billing_customer_id == customer.id},
            contact_accounts.get(email, set()) if email else set(),
            {
                a.account_id
                for a in accounts
                if not a.is_deleted and a.domain and a.domain.lower() == domain
            }
            if domain and domain not in FREE_MAIL
            else set(),
        )
        if not customer.listed:
            candidates = (set(), candidates[1], set(), set())
        tied[customer.id] = (customer.id, None)
        for rule, found in enumerate(candidates, start=1):
            if len(found) == 1:
                tied[customer.id] = (next(iter(found)), rule)
                break
    return tied


# --- one customer's records --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Covering:
    """An invoice line that contributes MRR, cut at its subscription's end."""

    start: int
    end: int
    monthly: Decimal  # USD
    subscription: str


@dataclass
class Customer:
    key: str
    account: Account | None
    lines: list[Covering] = field(default_factory=list)
    responses: list[CancelResponse] = field(default_factory=list)
    nps: list[NpsResponse] = field(default_factory=list)
    complaints: list[tuple[int, str, str, str | None]] = field(default_factory=list)
    activity_times: list[int] = field(default_factory=list)
    track_times: list[int] = field(default_factory=list)

    @property
    def segment_region(self) -> tuple[str, str]:
        if self.account is None:
            return UNKNOWN, UNKNOWN
        return self.account.segment, self.account.region

    @property
    def has_workspace(self) -> bool:
        return self.account is not None and self.account.workspace_id is not None

    def mrr_at(self, instant: int) -> Decimal:
        return sum((c.monthly for c in self.lines if c.start <= instant < c.end), ZERO)

    def mrr_at_close(self, close: int) -> Decimal:
        return sum((c.monthly for c in self.lines if c.start < close <= c.end), ZERO)

    def active_runs(self) -> list[tuple[int, int]]:
        """Maximal intervals of being active (MRR > 0), touching lines joined."""
        runs: list[list[int]] = []
        for start, end in sorted((c.start, c.end) for c in self.lines if c.monthly > 0):
            if runs and start <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], end)
            else:
                runs.append([start, end])
        return [(start, end) for start, end in runs]


@dataclass
class CompanyRecords:
    """The company's records, indexed for the truth, and its customers."""

    company: Company
    tied: dict[str, tuple[str, int | None]]
    customers: dict[str, Customer]
    subscriptions: dict[str, Subscription]
    invoices_of: dict[str, list]
    charges_of: dict[str, list]


def company_records(company: Company, rates: dict[tuple[str, int], Decimal], calendar):
    tied = identity(company)
    account = company.account
    customers: dict[str, Customer] = {}

    def customer(key: str) -> Customer:
        if key not in customers:
            own = account if account is not None and account.account_id == key else None
            customers[key] = Customer(key, own)
        return customers[key]

    if account is not None:
        owner = customer(account.account_id)
        owner.complaints = [
            (a.occurred_at, a.activity_id, a.subject, a.body)
            for a in company.activities
            if a.type == "complaint"
        ]
        if account.workspace_id == company.workspace_id:
            owner.activity_times = sorted(company.activity_times)
            owner.track_times = sorted(company.track_times)
    subscriptions = {sub.id: sub for sub in company.subscriptions}
    invoices_of, charges_of = defaultdict(list), defaultdict(list)
    invoice_sub = {}
    for invoice in company.invoices:
        invoices_of[invoice.subscription].append(invoice)
        invoice_sub[invoice.id] = invoice.subscription
        if invoice.status not in MRR_STATUSES:
            continue
        owner = customer(tied[invoice.customer][0])
        for line in invoice.lines:
            covering = _covering(line, invoice, subscriptions, rates, calendar)
            if covering is not None:
                owner.lines.append(covering)
    for charge in company.charges:
        charges_of[invoice_sub[charge.invoice]].append(charge)
    for bc in company.billing_customers:
        customer(tied[bc.id][0])
    records = CompanyRecords(company, tied, customers, subscriptions, invoices_of, charges_of)
    _attach_voice(records)
    return records


def _covering(line, invoice, subscriptions, rates, calendar) -> Covering | None:
    price = line.price
    if line.proration or not price.interval:
        return None
    subscription = subscriptions[line.subscription or invoice.subscription]
    end = line.end
    if subscription.ended_at is not None and subscription.ended_at < end:
        end = subscription.ended_at
    if line.start >= end:
        return None
    numerator, denominator = INTERVAL_SCALE[price.interval]
    minor = 1 if price.currency.lower() in ZERO_DECIMAL else 100
    rate = rates[(price.currency.lower(), calendar.month_of(line.start))]
    with localcontext() as context:
        context.prec = 50
        monthly = (
            Decimal(line.net * numerator) / (minor * price.interval_count * denominator) * rate
        )
        monthly = monthly.quantize(PLACES)
    return Covering(line.start, end, monthly, subscription.id)


def tied_answers(records: CompanyRecords) -> tuple[list[tuple], list[tuple]]:
    """Each cancellation and NPS answer with the customer key it ties to (None: no customer),
    by docs/metrics.md, Who is a customer."""
    company, tied = records.company, records.tied
    # An account no billing customer ties to is no customer: its contacts tie no answer.
    keys = {key for key, _ in tied.values()}
    contact_keys: dict[str, set[str]] = defaultdict(set)
    for contact in company.contacts:
        if contact.account_id in keys:
            contact_keys[normal_email(contact.email)].add(contact.account_id)
    billing_keys: dict[str, set[str]] = defaultdict(set)
    for bc in company.billing_customers:
        if bc.listed:  # the e-mail of a customer left out of the list is nowhere to be seen
            billing_keys[normal_email(bc.email)].add(tied[bc.id][0])

    def by_email(email: str) -> str | None:
        email = normal_email(email)
        for found in (contact_keys.get(email), billing_keys.get(email)):
            if email and found and len(found) == 1:
                return next(iter(found))
        return None

    cancel = []
    for response in company.cancel_responses:
        subscription = records.subscriptions.get(response.subscription_id)
        key = tied[subscription.customer][0] if subscription else by_email(response.email)
        cancel.append((response, key))
    nps = [(answer, by_email(answer.email)) for answer in company.nps_responses]
    return cancel, nps


def _attach_voice(records: CompanyRecords) -> None:
    """Survey and NPS answers to their customer."""
    cancel, nps = tied_answers(records)
    for response, key in cancel:
        if key is not None:
            records.customers[key].responses.append(response)
    for answer, key in nps:
        if key is not None:
            records.customers[key].nps.append(answer)


# --- months ------------------------------------------------------------------------------------

COUNTS = (
    "customers_start",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
    "customers_end",
)
MONEY = (
    "mrr_start",
    "new_mrr",
    "reactivation_mrr",
    "expansion_mrr",
    "contraction_mrr",
    "churned_mrr",
    "mrr_end",
)
MONTHLY_COLUMNS = (
    "month",
    "segment",
    "region",
    *COUNTS[:4],
    "customers_end",
    "logo_churn_rate",
    *MONEY,
    "gross_revenue_churn_rate",
    "net_revenue_retention",
)


@dataclass
class MonthlyTruth:
    """Movement sums per (month, segment, region), the all/all totals included."""

    cells: dict[tuple[int, str, str], dict[str, Decimal | int]] = field(default_factory=dict)

    def add(self, customer: Customer, calendar: Calendar) -> None:
        positive = [c for c in customer.lines if c.monthly > 0]
        if not positive:
            return
        first = min(c.start for c in positive)
        segment, region = customer.segment_region
        last_month = calendar.first_month + calendar.months - 1
        for month in range(calendar.month_of(first), last_month + 1):
            begin, close = month_start(month), month_start(month + 1)
            a, b = customer.mrr_at_close(begin), customer.mrr_at_close(close)
            movement = _movement(a, b, active_before=first < begin)
            for cut in ((month, segment, region), (month, "all", "all")):
                cell = self.cells.setdefault(cut, dict.fromkeys(COUNTS + MONEY, 0))
                for name, value in movement.items():
                    cell[name] += value

    def merge(self, other: MonthlyTruth) -> None:
        for cut, values in other.cells.items():
            cell = self.cells.setdefault(cut, dict.fromkeys(COUNTS + MONEY, 0))
            for name, value in values.items():
                cell[name] += value

    def rows(self) -> list[list[str]]:
        from churnhouse.devkit.simulator.clock import month_label

        rows = []
        for (month, segment, region), cell in sorted(self.cells.items()):
            mrr_start = Decimal(cell["mrr_start"])
            kept = mrr_start + cell["expansion_mrr"] - cell["contraction_mrr"] - cell["churned_mrr"]
            rows.append(
                [
                    f"{month_label(month)}-01",
                    segment,
                    region,
                    *(str(cell[name]) for name in COUNTS),
                    ratio(Decimal(cell["churned_customers"]), Decimal(cell["customers_start"])),
                    *(money(Decimal(cell[name])) for name in MONEY),
                    ratio(cell["churned_mrr"] + cell["contraction_mrr"], mrr_start),
                    ratio(kept, mrr_start),
                ]
            )
        return rows


def _movement(a: Decimal, b: Decimal, active_before: bool) -> dict[str, Decimal | int]:
    moved: dict[str, Decimal | int] = {
        "customers_start": int(a > 0),
        "customers_end": int(b > 0),
        "mrr_start": a,
        "mrr_end": b,
    }
    if a > 0 and b == 0:
        moved.update(churned_customers=1, churned_mrr=a)
    elif a == 0 and b > 0 and active_before:
        moved.update(reactivated_customers=1, reactivation_mrr=b)
    elif a == 0 and b > 0:
        moved.update(new_customers=1, new_mrr=b)
    elif 0 < a < b:
        moved["expansion_mrr"] = b - a
    elif 0 < b < a:
        moved["contraction_mrr"] = a - b
    return moved


# --- churns ------------------------------------------------------------------------------------

CHURN_COLUMNS = (
    "customer_key",
    "crm_account_id",
    "billing_customer_id",
    "churned_at",
    "cancel_requested_at",
    "churn_type",
    "mrr_lost",
    "tenure_days",
    "last_active_at",
    "nps_last",
    "reason_category",
    "archetype",
    "is_influenceable",
    "churn_month",
    "spell_number",
    "life_started_at",
    "reason_source",
    "ending_subscriptions",
)


def churn_rows(records: CompanyRecords, customer: Customer, as_of: int) -> list[list[str]]:
    """One row per stop (active → not active) at or before as_of."""
    runs = customer.active_runs()
    if not runs:
        return []
    first_active = runs[0][0]
    rows = []
    for spell, (became_active, churned_at) in enumerate(runs, start=1):
        if churned_at > as_of:
            continue
        row = _churn_row(records, customer, became_active, churned_at, first_active)
        rows.append([*row[:14], str(spell), *row[14:]])
    return rows


def _churn_row(records, customer: Customer, became_active: int, churned_at: int, first: int):
    ending_lines = [c for c in customer.lines if c.start < churned_at <= c.end]
    ending = [
        records.subscriptions[sub_id] for sub_id in sorted({c.subscription for c in ending_lines})
    ]
    requested = [sub.canceled_at for sub in ending if sub.canceled_at is not None]
    involuntary = any(_is_involuntary(records, sub) for sub in ending)
    statement, source = _primary_statement(customer, ending, became_active, churned_at, involuntary)
    complaint_before = any(
        churned_at - COMPLAINT_WINDOW <= c[0] < churned_at for c in customer.complaints
    )
    # metrics.md names `track` events here, not every activity call.
    last_active = _latest_before(customer.track_times, churned_at)
    quiet = last_active is None or last_active < churned_at - QUIET_WINDOW
    kind = archetype(statement, complaint_before, customer.has_workspace, quiet)
    nps = [n for n in customer.nps if n.submitted_at < churned_at]
    nps_last = max(nps, key=lambda n: (n.submitted_at, n.response_id)).score if nps else None
    account_id = customer.key if customer.account is not None else ""
    return [
        customer.key,
        account_id,
        min(sub.customer for sub in ending),
        truth_text(churned_at),
        truth_text(max(requested) if requested else None),
        "involuntary" if involuntary else "voluntary",
        money(sum((c.monthly for c in ending_lines), ZERO)),
        str((churned_at - first) // DAY),
        truth_text(last_active),
        "" if nps_last is None else str(nps_last),
        statement.category,
        kind,
        "true" if is_influenceable(kind, statement.category) else "false",
        truth_text(month_start(_month_number(churned_at)))[:10],
        truth_text(became_active),
        source or "",
        str(len(ending)),
    ]


def _month_number(instant: int) -> int:
    from churnhouse.devkit.simulator.clock import utc_datetime

    moment = utc_datetime(instant)
    return moment.year * 12 + moment.month - 1


def _latest_before(times: list[int], instant: int) -> int | None:
    position = bisect_left(times, instant)
    return times[position - 1] if position else None


def _is_involuntary(records: CompanyRecords, sub: Subscription) -> bool:
    if sub.cancel_reason == "payment_failed":
        return True
    invoices = [i for i in records.invoices_of[sub.id] if i.status not in ("void", "draft")]
    if invoices and max(invoices, key=lambda i: (i.created, i.id)).status == "uncollectible":
        return True
    charges = records.charges_of[sub.id]
    if charges:
        latest = max(charges, key=lambda c: (c.created, c.status == "succeeded"))
        return latest.status == "failed"
    return False


def _primary_statement(customer, ending, became_active, churned_at, involuntary):
    """Metrics spec, Reasons: survey, then billing feedback, complaint, payment_failed, unknown."""
    answers = [
        r
        for r in customer.responses
        if r.outcome == "canceled" and became_active <= r.submitted_at <= churned_at
    ]
    if answers:
        latest = max(answers, key=lambda r: (r.submitted_at, r.response_id))
        stated = survey_statement(latest.primary_reason, latest.reason_text)
        if stated is not None:
            return stated, "survey"
    with_feedback = [sub for sub in ending if sub.feedback]
    if with_feedback:
        latest = max(with_feedback, key=lambda s: (s.canceled_at or -1, s.id))
        return billing_statement(latest.feedback), "billing"
    recent = [c for c in customer.complaints if churned_at - COMPLAINT_WINDOW <= c[0] < churned_at]
    if recent:
        _, _, subject, body = max(recent)
        return complaint_statement(subject, body), "crm"
    if involuntary:
        return Statement("payment_failed", "payment_failed"), None
    return Statement("unknown", None), None


# --- saves -------------------------------------------------------------------------------------

SAVE_COLUMNS = ("response_id", "customer_key", "submitted_at", "saved_mrr", "is_deflection")


def save_rows(customer: Customer, as_of: int) -> list[list[str]]:
    rows = []
    for response in customer.responses:
        if response.outcome != "saved":
            continue
        moment = response.submitted_at
        later = moment + SAVE_WINDOW
        deflection = "" if later > as_of else str(customer.mrr_at(later) > 0).lower()
        rows.append(
            [
                response.response_id,
                customer.key,
                truth_text(moment),
                money(customer.mrr_at(moment)),
                deflection,
            ]
        )
    return rows


IDENTITY_COLUMNS = ("billing_customer_id", "customer_key", "rule")


def identity_rows(records: CompanyRecords) -> list[list[str]]:
    return [
        [bc_id, key, "" if rule is None else str(rule)]
        for bc_id, (key, rule) in sorted(records.tied.items())
    ]


@dataclass
class CompanyTruth:
    churns: list[list[str]]
    saves: list[list[str]]
    identity: list[list[str]]
    unmatched: int
    marts: dict[str, list[list[str]]] = field(default_factory=dict)


def company_truth(company: Company, rates, calendar: Calendar, monthly: MonthlyTruth, nps=None):
    """The company's churns, saves, identity and mart rows (`truth_marts`).

    Its months are added to `monthly`, its NPS answers to `nps` (a `truth_marts.NpsTruth`).
    """
    from churnhouse.devkit.simulator.truth_marts import NpsTruth, company_mart_rows

    records = company_records(company, rates, calendar)
    marts = company_mart_rows(records, calendar, nps if nps is not None else NpsTruth())
    churns, saves = [], []
    for key in sorted(records.customers):
        customer = records.customers[key]
        monthly.add(customer, calendar)
        churns.extend(churn_rows(records, customer, calendar.as_of))
        saves.extend(save_rows(customer, calendar.as_of))
    unmatched = sum(rule is None for _, rule in records.tied.values())
    return CompanyTruth(sorted(churns), sorted(saves), identity_rows(records), unmatched, marts)
