"""The clean records of one simulated company, before any serialisation or mess.

Instants are Unix seconds (UTC). Every record is in its final state as of
`as_of`: an object that changed in place (a subscription, an account) holds
its last version, as the source system would show it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Price:
    id: str
    product: str
    unit_amount: int
    currency: str
    interval: str  # month | year
    interval_count: int


@dataclass(slots=True)
class Line:
    id: str
    subscription: str
    price: Price
    quantity: int
    amount: int  # minor units, before discounts (Stripe's line.amount)
    start: int
    end: int
    proration: bool = False
    item: str | None = None  # the subscription item (si_...) it bills
    discounts: tuple[tuple[int, str], ...] = ()  # (amount, discount id): discount_amounts

    @property
    def net(self) -> int:
        """What the customer pays for the line: `amount` less its discounts (metrics.md, MRR)."""
        return self.amount - sum(amount for amount, _ in self.discounts)


@dataclass(slots=True)
class Invoice:
    id: str
    customer: str
    subscription: str
    currency: str
    created: int
    billing_reason: str
    lines: list[Line]
    period_start: int
    period_end: int
    status: str = "open"  # draft | open | paid | void | uncollectible
    attempt_count: int = 0
    amount_paid: int = 0

    @property
    def amount_due(self) -> int:
        return sum(line.net for line in self.lines)


@dataclass(slots=True)
class Charge:
    id: str
    customer: str
    invoice: str
    amount: int
    currency: str
    created: int
    status: str  # succeeded | failed
    failure_code: str | None = None


@dataclass(slots=True)
class Item:
    id: str
    price: Price
    quantity: int


@dataclass(slots=True)
class Subscription:
    id: str
    customer: str
    created: int
    items: list[Item]
    status: str = "active"
    trial_start: int | None = None
    trial_end: int | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None
    current_period_start: int | None = None
    current_period_end: int | None = None
    cancel_reason: str | None = None  # cancellation_details.reason
    feedback: str | None = None
    comment: str | None = None


@dataclass(slots=True)
class BillingCustomer:
    id: str
    email: str  # as written: any case, maybe padded
    name: str
    created: int
    currency: str
    crm_account_id: str | None  # metadata.crm_account_id, None when missing
    deleted: bool = False
    listed: bool = True  # False: deleted and left out of the customer list (Stripe's way)


@dataclass(slots=True)
class Account:
    account_id: str
    name: str
    domain: str | None
    industry: str | None
    employee_count: int | None
    region: str
    segment: str
    owner_id: str
    csm_id: str | None
    workspace_id: str | None
    billing_customer_id: str | None
    created_at: int
    updated_at: int
    is_deleted: bool = False


@dataclass(slots=True)
class Contact:
    contact_id: str
    account_id: str
    email: str  # as written
    full_name: str
    title: str | None
    is_primary: bool
    created_at: int
    updated_at: int


@dataclass(slots=True)
class Activity:
    activity_id: str
    account_id: str
    user_id: str
    type: str
    occurred_at: int
    subject: str
    body: str | None
    updated_at: int


@dataclass(slots=True)
class CancelResponse:
    response_id: str
    submitted_at: int
    offset: tuple[str, int]  # (suffix, seconds) the survey tool wrote the time in
    email: str  # as written, may be empty
    subscription_id: str
    primary_reason: str
    reason_text: str
    offer_presented: str
    offer_accepted: bool
    outcome: str  # canceled | saved


@dataclass(slots=True)
class NpsResponse:
    response_id: str
    submitted_at: int
    offset: tuple[str, int]
    email: str
    score: int
    comment: str


@dataclass(slots=True)
class ProductUser:
    user_id: str
    email: str
    offset: tuple[str, int]
    rate: float  # chance of being active on an ordinary weekday


@dataclass(slots=True)
class Stretch:
    """One stretch of product use: a trial or a paying life, with why it ended."""

    start: int
    end: int  # end of service (as_of when still running)
    story: str  # stays | trial | habit_change | graduated | ... (catalog.STORIES)
    cancel_requested: int | None = None
    churned: bool = False


@dataclass(slots=True)
class Company:
    """One simulated customer company and everything its four systems hold about it."""

    index: int
    name: str
    segment: str
    region: str
    currency: str
    domain: str | None
    workspace_id: str
    account: Account | None = None
    contacts: list[Contact] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    billing_customers: list[BillingCustomer] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    cancel_responses: list[CancelResponse] = field(default_factory=list)
    nps_responses: list[NpsResponse] = field(default_factory=list)
    users: list[ProductUser] = field(default_factory=list)
    stretches: list[Stretch] = field(default_factory=list)
    activated: bool = False
    # Filled when events are written, by the workspace rule of sources.md section 3:
    # activity (track, page, screen calls) that counts for this company's own workspace,
    activity_times: list[int] = field(default_factory=list)
    # its `track` calls alone: churn_events' last_active_at and habit_change (metrics.md)
    track_times: list[int] = field(default_factory=list)
    active_user_days: set[tuple[int, str]] = field(default_factory=set)  # (UTC day, user_id)
    activation_times: list[int] = field(default_factory=list)  # track calls of the event
    # every workspace its calls name or reach (activity assigned, group calls) → moments,
    workspace_calls: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    # and activity that reaches no workspace, per user_id.
    unassigned_calls: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    messy_emails: int = 0
