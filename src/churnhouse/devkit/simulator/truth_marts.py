"""Ground truth for the published marts beyond churn_monthly and churn_events.

`nps_monthly`, `cancel_saves`, `engagement_monthly`, `fct_customer_mrr_monthly`,
`dim_customers` and `identity_unmatched`, computed from the simulator's clean
records by `metrics.md` (not from the dbt SQL). Each table is written to
`truth/<table>.csv` with the columns in `MART_COLUMNS`; acceptance compares every
column the pipeline's contract lists, so a column missing here fails there.

Where the spec leaves a choice open, the truth takes the published model's reading
(each is named where it is made): customers are the keys billing customers tie to
(an account no billing customer ties to is no customer, so its contacts tie no
answer), months are the months the marts report (the month of as_of is not one).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache

from churnhouse.devkit.simulator.clock import DAY, Calendar, month_label, month_start, truth_text
from churnhouse.devkit.simulator.reasons import survey_statement
from churnhouse.devkit.simulator.truth import (
    FREE_MAIL,
    SAVE_WINDOW,
    UNKNOWN,
    ZERO,
    CompanyRecords,
    Customer,
    email_domain,
    money,
    normal_email,
    tied_answers,
)

ACTIVATION_WINDOW = 14 * DAY

CANCEL_SAVES_COLUMNS = (
    "response_id",
    "customer_key",
    "submitted_at",
    "submitted_month",
    "offer_presented",
    "offer_accepted",
    "outcome",
    "is_save",
    "deflection_checked_at",
    "is_deflection_known",
    "is_deflection",
    "saved_mrr",
    "reason_category",
)
FCT_COLUMNS = (
    "customer_key",
    "crm_account_id",
    "month",
    "segment",
    "region",
    "mrr_start",
    "mrr_end",
    "new_mrr",
    "reactivation_mrr",
    "expansion_mrr",
    "contraction_mrr",
    "churned_mrr",
    "is_active_at_start",
    "is_active_at_end",
    "is_new",
    "is_reactivated",
    "is_churned",
    "movement",
)
DIM_COLUMNS = (
    "customer_key",
    "crm_account_id",
    "billing_customer_ids",
    "billing_customer_count",
    "identity_rule",
    "workspace_id",
    "segment",
    "region",
    "owner_id",
    "csm_id",
    "is_crm_account_deleted",
    "first_active_at",
    "first_paid_date",
    "current_mrr",
    "status",
    "churn_count",
    "last_churned_at",
    "account_name",
)
ENGAGEMENT_COLUMNS = (
    "month",
    "customer_key",
    "workspace_id",
    "active_users",
    "active_days",
    "avg_daily_active_users",
    "dau_mau",
    "is_new_customer",
    "is_activated",
    "activated_at",
)
UNMATCHED_COLUMNS = (
    "source",
    "record_type",
    "record_id",
    "reason",
    "records",
    "first_seen_at",
    "last_seen_at",
)
NPS_COLUMNS = (
    "month",
    "segment",
    "respondents",
    "promoters",
    "passives",
    "detractors",
    "nps",
    "average_score",
)

# Tables whose rows one company gives on its own; nps_monthly sums over companies.
COMPANY_TABLES = {
    "cancel_saves": CANCEL_SAVES_COLUMNS,
    "fct_customer_mrr_monthly": FCT_COLUMNS,
    "dim_customers": DIM_COLUMNS,
    "engagement_monthly": ENGAGEMENT_COLUMNS,
    "identity_unmatched": UNMATCHED_COLUMNS,
}
MART_COLUMNS = {**COMPANY_TABLES, "nps_monthly": NPS_COLUMNS}


def flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def day_label(instant: int) -> str:
    return truth_text(instant)[:10]


def nps_class(score: int) -> str:
    """metrics.md, NPS: promoter 9-10, passive 7-8, detractor 0-6."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def exact_ratio(numerator: int | Decimal, denominator: int | Decimal) -> float | None:
    """The double nearest the exact quotient; None when the denominator is 0."""
    if denominator == 0:
        return None
    return float(Decimal(numerator) / Decimal(denominator))


def _rate_text(value: float | None) -> str:
    return "" if value is None else repr(value)


# --- who answers belong to (the pipeline's reading: customers are tied keys) --------------------


@dataclass
class Voice:
    """Each survey and NPS answer with the customer key it ties to (None: no customer)."""

    cancel: list[tuple] = field(default_factory=list)  # (response, key)
    nps: list[tuple] = field(default_factory=list)  # (answer, key)


def tie_answers(records: CompanyRecords) -> Voice:
    cancel, nps = tied_answers(records)
    return Voice(cancel, nps)


# --- cancel_saves --------------------------------------------------------------------------------


def cancel_saves_rows(records: CompanyRecords, voice: Voice, as_of: int) -> list[list[str]]:
    rows = []
    for response, key in voice.cancel:
        moment = response.submitted_at
        if moment > as_of:
            continue
        customer = records.customers.get(key) if key is not None else None
        checked = moment + SAVE_WINDOW
        known = checked <= as_of
        saved = response.outcome == "saved"
        if not known:
            deflection = None
        elif saved:
            deflection = customer is not None and customer.mrr_at(checked) > 0
        else:
            deflection = False
        saved_mrr = ""
        if saved and key is not None:
            saved_mrr = money(customer.mrr_at(moment) if customer else ZERO)
        stated = survey_statement(response.primary_reason, response.reason_text)
        rows.append(
            [
                response.response_id,
                key or "",
                truth_text(moment),
                day_label(month_start(_month(moment))),
                response.offer_presented,
                flag(response.offer_accepted),
                response.outcome,
                flag(saved),
                truth_text(checked),
                flag(known),
                flag(deflection),
                saved_mrr,
                stated.category if stated else "",
            ]
        )
    return rows


def _month(instant: int) -> int:
    """Month number (year * 12 + month - 1) of the UTC month holding `instant`."""
    return _day_month(instant // DAY)


@cache
def _day_month(day: int) -> int:
    moment = date.fromordinal(day + 719_163)  # 719_163 = 1970-01-01
    return moment.year * 12 + moment.month - 1


# --- customer months: fct_customer_mrr_monthly and engagement_monthly ---------------------------


@dataclass(frozen=True)
class CustomerMonth:
    month: int
    a: Decimal
    b: Decimal
    is_new: bool
    is_reactivated: bool


def customer_months(customer: Customer, calendar: Calendar) -> list[CustomerMonth]:
    """Months from the one of the first active instant to the last reported month."""
    positive = [c for c in customer.lines if c.monthly > 0]
    if not positive:
        return []
    first = min(c.start for c in positive)
    last_month = calendar.first_month + calendar.months - 1
    months = []
    for month in range(calendar.month_of(first), last_month + 1):
        begin, close = month_start(month), month_start(month + 1)
        a, b = customer.mrr_at_close(begin), customer.mrr_at_close(close)
        starts = a == 0 and b > 0
        months.append(
            CustomerMonth(month, a, b, starts and first >= begin, starts and first < begin)
        )
    return months


def _crm_account(customer: Customer) -> str:
    return customer.key if customer.account is not None else ""


def fct_rows(customer: Customer, months: list[CustomerMonth]) -> list[list[str]]:
    segment, region = customer.segment_region
    rows = []
    for m in months:
        a, b = m.a, m.b
        churned = a > 0 and b == 0
        expansion = b - a if 0 < a < b else ZERO
        contraction = a - b if 0 < b < a else ZERO
        if m.is_new:
            movement = "new"
        elif m.is_reactivated:
            movement = "reactivation"
        elif churned:
            movement = "churn"
        elif expansion > 0:
            movement = "expansion"
        elif contraction > 0:
            movement = "contraction"
        elif b > 0:
            movement = "retained"
        else:
            movement = "inactive"
        rows.append(
            [
                customer.key,
                _crm_account(customer),
                day_label(month_start(m.month)),
                segment,
                region,
                money(a),
                money(b),
                money(b if m.is_new else ZERO),
                money(b if m.is_reactivated else ZERO),
                money(expansion),
                money(contraction),
                money(a if churned else ZERO),
                flag(a > 0),
                flag(b > 0),
                flag(m.is_new),
                flag(m.is_reactivated),
                flag(churned),
                movement,
            ]
        )
    return rows


def _workspace(customer: Customer) -> str | None:
    account = customer.account
    return account.workspace_id if account is not None else None


def engagement_rows(
    records: CompanyRecords, customer: Customer, months: list[CustomerMonth], as_of: int
) -> list[list[str]]:
    """metrics.md, Engagement: a user is active on a UTC day with an activity call (track,
    page, screen) that day, counted for the workspace sources.md section 3 assigns it."""
    if not months:
        return []
    company = records.company
    workspace = _workspace(customer)
    own_events = workspace is not None and workspace == company.workspace_id
    by_month: dict[int, set[tuple[int, str]]] = defaultdict(set)
    if own_events:
        for day, user in company.active_user_days:
            by_month[_day_month(day)].add((day, user))
    first = min(c.start for c in customer.lines if c.monthly > 0)
    activated_at = None
    if own_events:
        due = [
            t
            for t in company.activation_times
            if first <= t <= first + ACTIVATION_WINDOW and t <= as_of
        ]
        activated_at = min(due) if due else None
    rows = []
    for m in months:
        user_days = by_month.get(m.month, set())
        users = {user for _, user in user_days}
        days_in_month = (month_start(m.month + 1) - month_start(m.month)) // DAY
        average = len(user_days) / days_in_month
        rows.append(
            [
                day_label(month_start(m.month)),
                customer.key,
                workspace or "",
                str(len(users)),
                str(len({day for day, _ in user_days})),
                repr(float(average)),
                repr(average / len(users)) if users else "",
                flag(m.is_new),
                flag(activated_at is not None) if m.is_new else "",
                truth_text(activated_at) if m.is_new else "",
            ]
        )
    return rows


# --- dim_customers -------------------------------------------------------------------------------


def dim_rows(records: CompanyRecords, as_of: int) -> list[list[str]]:
    billing_of: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for bc_id, (key, rule) in records.tied.items():
        billing_of[key].append((bc_id, rule))
    rows = []
    for key in sorted(billing_of):
        customer = records.customers[key]
        ids = sorted(bc_id for bc_id, _ in billing_of[key])
        rules = [rule for _, rule in billing_of[key] if rule is not None]
        account = customer.account
        lives = [(s, e) for s, e in customer.active_runs() if s <= as_of]
        first = lives[0][0] if lives else None
        ended = [e for _, e in lives if e <= as_of]
        current = customer.mrr_at_close(as_of)
        if current > 0:
            status = "active"
        elif first is not None:
            status = "churned"
        else:
            status = "never_active"
        rows.append(
            [
                key,
                _crm_account(customer),
                ", ".join(ids),
                str(len(ids)),
                str(min(rules)) if rules else "",
                (account.workspace_id or "") if account else "",
                account.segment if account else UNKNOWN,
                account.region if account else UNKNOWN,
                account.owner_id if account else "",
                (account.csm_id or "") if account else "",
                flag(account.is_deleted if account else False),
                truth_text(first),
                day_label(first) if first is not None else "",
                money(current),
                status,
                str(len(ended)),
                truth_text(max(ended) if ended else None),
                account.name if account else "",
            ]
        )
    return rows


# --- identity_unmatched --------------------------------------------------------------------------


def unmatched_rows(records: CompanyRecords, voice: Voice, as_of: int) -> list[list[str]]:
    company, tied = records.company, records.tied
    account = company.account
    keys = {key for key, _ in tied.values()}
    rows = []
    for bc in company.billing_customers:
        if tied[bc.id][1] is not None:
            continue
        email = normal_email(bc.email)
        reasons = []
        if (bc.crm_account_id or "").strip():
            reasons.append("metadata crm_account_id is not a CRM account")
        if not email:
            reasons.append("no e-mail")
        elif email_domain(email) in FREE_MAIL:
            reasons.append("free-mail domain")
        reason = "; ".join(reasons) or "no CRM account carries its id, its e-mail or its domain"
        rows.append(["billing", "billing_customer", bc.id, reason, "1", "", ""])
    if account is not None and account.account_id not in keys:
        deleted = " (deleted)" if account.is_deleted else ""
        reason = f"no billing customer is tied to this{deleted} account"
        rows.append(["crm", "crm_account", account.account_id, reason, "1", "", ""])
    for response, key in voice.cancel:
        if key is not None or response.submitted_at > as_of:
            continue
        if normal_email(response.email):
            reason = "unknown subscription and the e-mail matches no customer"
        else:
            reason = "unknown subscription and no e-mail"
        moment = truth_text(response.submitted_at)
        rows.append(
            ["surveys", "cancellation_response", response.response_id, reason, "1", moment, moment]
        )
    for answer, key in voice.nps:
        if key is not None or answer.submitted_at > as_of:
            continue
        moment = truth_text(answer.submitted_at)
        reason = "the e-mail matches no customer"
        rows.append(["surveys", "nps_response", answer.response_id, reason, "1", moment, moment])
    # Workspaces (sources.md section 3): activity by the workspace it was assigned, group
    # calls by the one they name; the company's own workspace unless a customer has it.
    owned = (
        account is not None
        and account.workspace_id == company.workspace_id
        and account.account_id in keys
    )
    for workspace in sorted(company.workspace_calls):
        calls = [t for t in company.workspace_calls[workspace] if t <= as_of]
        if not calls or (owned and workspace == company.workspace_id):
            continue
        if account is None or account.workspace_id != workspace:
            reason = "no CRM account has this workspace_id"
        else:
            reason = "the account with this workspace is tied to no billing customer"
        rows.append(_calls_row("workspace", workspace, reason, calls))
    for user_id in sorted(company.unassigned_calls):
        calls = [t for t in company.unassigned_calls[user_id] if t <= as_of]
        if calls:
            reason = "activity with no group id and no group call of this user at or before it"
            rows.append(_calls_row("product_user", user_id, reason, calls))
    return rows


def _calls_row(record_type: str, record_id: str, reason: str, calls: list[int]) -> list[str]:
    return [
        "events",
        record_type,
        record_id,
        reason,
        str(len(calls)),
        truth_text(min(calls)),
        truth_text(max(calls)),
    ]


# --- nps_monthly ---------------------------------------------------------------------------------


@dataclass
class NpsTruth:
    """Respondent counts per (month, segment), the 'all' totals included."""

    cells: dict[tuple[int, str], list[int]] = field(default_factory=dict)

    def add(self, month: int, segment: str, score: int) -> None:
        kind = ("promoter", "passive", "detractor").index(nps_class(score))
        for cut in ((month, segment), (month, "all")):
            cell = self.cells.setdefault(cut, [0, 0, 0, 0, 0])
            cell[0] += 1
            cell[1 + kind] += 1
            cell[4] += score

    def merge(self, other: NpsTruth) -> None:
        for cut, values in other.cells.items():
            cell = self.cells.setdefault(cut, [0, 0, 0, 0, 0])
            for position, value in enumerate(values):
                cell[position] += value

    def rows(self) -> list[list[str]]:
        rows = []
        for (month, segment), (n, promoters, passives, detractors, total) in sorted(
            self.cells.items()
        ):
            nps = exact_ratio(promoters - detractors, n)
            rows.append(
                [
                    f"{month_label(month)}-01",
                    segment,
                    str(n),
                    str(promoters),
                    str(passives),
                    str(detractors),
                    _rate_text(None if nps is None else 100 * nps),
                    _rate_text(exact_ratio(total, n)),
                ]
            )
        return rows


def add_nps(records: CompanyRecords, voice: Voice, calendar: Calendar, nps: NpsTruth) -> None:
    """Each respondent's latest answer in a reported month, cut by its customer's segment."""
    last_month = calendar.first_month + calendar.months - 1
    latest: dict[tuple[str, int], tuple] = {}
    for answer, key in voice.nps:
        if answer.submitted_at > calendar.as_of:
            continue
        month = _month(answer.submitted_at)
        if month > last_month:
            continue
        slot = (normal_email(answer.email), month)
        if slot not in latest or (answer.submitted_at, answer.response_id) > (
            latest[slot][0].submitted_at,
            latest[slot][0].response_id,
        ):
            latest[slot] = (answer, key)
    for (_, month), (answer, key) in latest.items():
        customer = records.customers.get(key) if key is not None else None
        segment = customer.account.segment if customer and customer.account else UNKNOWN
        nps.add(month, segment, answer.score)


# --- one company ---------------------------------------------------------------------------------


def company_mart_rows(
    records: CompanyRecords, calendar: Calendar, nps: NpsTruth
) -> dict[str, list[list[str]]]:
    """The company's rows of every table in COMPANY_TABLES; its NPS answers go to `nps`."""
    as_of = calendar.as_of
    voice = tie_answers(records)
    tables: dict[str, list[list[str]]] = {name: [] for name in COMPANY_TABLES}
    keys = sorted({key for key, _ in records.tied.values()})
    for key in keys:
        customer = records.customers[key]
        months = customer_months(customer, calendar)
        tables["fct_customer_mrr_monthly"] += fct_rows(customer, months)
        tables["engagement_monthly"] += engagement_rows(records, customer, months, as_of)
    tables["cancel_saves"] = cancel_saves_rows(records, voice, as_of)
    tables["dim_customers"] = dim_rows(records, as_of)
    tables["identity_unmatched"] = unmatched_rows(records, voice, as_of)
    add_nps(records, voice, calendar, nps)
    return tables
