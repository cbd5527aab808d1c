"""One simulated customer company, deterministic for (seed, index).

Each company has its own random stream, so companies are built in chunks and
written out without holding the whole customer base in memory. Domains and
emails are unique per company (the index is part of them; free-mail domains
are shared but never tie a customer by domain), so the identity rules of docs/metrics.md
never join two simulated companies: the truth can be computed one company at
a time.
"""

from __future__ import annotations

import random

from churnhouse.devkit.simulator.catalog import (
    ALL_OFFSETS,
    CURRENCIES,
    FIRST_NAMES,
    FIRST_TIER,
    FREE_MAIL,
    INDUSTRIES,
    LAST_NAMES,
    LEGAL,
    MONTHLY_CHURN_HAZARD,
    NAME_NOUNS,
    NAME_WORDS,
    OFFSETS,
    PLAN_SHARE,
    REGIONS,
    SEATS,
    SEGMENTS,
    STORIES,
    TITLES,
    TLDS,
    USERS,
)
from churnhouse.devkit.simulator.clock import DAY, HOUR, Calendar
from churnhouse.devkit.simulator.draw import pick, written_email
from churnhouse.devkit.simulator.lifecycle import Context, Ids, Life, Plan
from churnhouse.devkit.simulator.model import (
    Account,
    BillingCustomer,
    Company,
    Contact,
    ProductUser,
)
from churnhouse.devkit.simulator.staff import pick_staff
from churnhouse.devkit.simulator.truth import identity
from churnhouse.devkit.simulator.voice import crm_activities, nps_responses

NO_CRM_SHARE = 0.04  # self-serve companies sales never entered in the CRM
NULL_DOMAIN_SHARE = 0.05
NO_WORKSPACE_SHARE = 0.03  # accounts whose workspace_id the CRM does not know
CRM_LATE_SHARE = 0.2  # accounts created in the CRM only after the first payment
METADATA_SHARE = 0.8  # billing customers carrying metadata.crm_account_id
CRM_BILLING_ID_SHARE = 0.4  # accounts carrying billing_customer_id
SECOND_CUSTOMER_SHARE = 0.03  # companies paying through a second billing customer too
ADDON_SHARE = 0.1
TRIAL_SHARE = {"smb": 0.45, "mid_market": 0.3, "enterprise": 0.1}
PAYS_BY_INVOICE = {"smb": 0.0, "mid_market": 0.1, "enterprise": 0.5}
INITIAL_COHORT_SHARE = 0.3  # companies already paying when the simulation starts
COMEBACK_SHARE = {"trial": 0.25, "graduated": 0.03, "external": 0.03}
COMEBACK_DEFAULT = 0.15
ACCOUNT_DELETE_SHARE = 0.35
BILLING_DELETE_SHARE = 0.15
UNLISTED_SHARE = 0.5  # of deleted billing customers whose key rule 2 alone gives: left out


def build_company(seed: int, index: int, calendar: Calendar) -> Company:
    """Everything the company's four systems hold about customer company `index` at as_of."""
    rng = random.Random(f"{seed}:{index}")
    company = _profile(rng, index)
    as_of = calendar.as_of
    first_start = _first_start(rng, calendar)
    account_created = _account_created(rng, first_start, as_of)
    people = _people(rng, company, 1 + rng.randrange(*_contact_range(company.segment)))
    bc_ids = Ids(index)
    main = _billing_customer(
        rng, company, bc_ids.next("cus"), first_start, people, account_created is not None
    )
    company.billing_customers.append(main)
    respondents = [email for email, _ in people] if account_created else [_clean(main.email)]
    ctx = Context(
        company=company,
        rng=rng,
        as_of=as_of,
        ids=Ids(index),
        pays_by_invoice=rng.random() < PAYS_BY_INVOICE[company.segment],
        respondents=respondents,
        coupons=random.Random(f"{seed}:{index}:coupons"),
    )
    _live_on(ctx, main, first_start)
    if account_created is not None and rng.random() < SECOND_CUSTOMER_SHARE:
        _second_customer(ctx, bc_ids, first_start)
    _close_billing_customers(rng, company, as_of)
    if account_created is not None:
        company.account = _account(rng, company, account_created, as_of)
        company.contacts = _contacts(rng, company, people, as_of)
        company.activities = crm_activities(rng, company, as_of)
    company.nps_responses = nps_responses(rng, company, respondents, as_of)
    company.users = _product_users(rng, company, people)
    company.activated = rng.random() < 0.7
    _leave_out_deleted(seed, company)
    return company


# --- who the company is -----------------------------------------------------------------------


def _profile(rng: random.Random, index: int) -> Company:
    segment, region = pick(rng, SEGMENTS), pick(rng, REGIONS)
    words = f"{rng.choice(NAME_WORDS).title()} {rng.choice(NAME_NOUNS).title()}"
    slug = words.lower().replace(" ", "")
    domain = None if rng.random() < NULL_DOMAIN_SHARE else f"{slug}{index}.{rng.choice(TLDS)}"
    return Company(
        index=index,
        name=f"{words} {rng.choice(LEGAL)}",
        segment=segment,
        region=region,
        currency=pick(rng, CURRENCIES[region]),
        domain=domain,
        workspace_id=f"ws_{index:06d}",
    )


def _first_start(rng: random.Random, calendar: Calendar) -> int:
    """When the company first subscribes: many in the first month, the rest spread out."""
    start, as_of = calendar.start, calendar.as_of
    if rng.random() < INITIAL_COHORT_SHARE:
        if rng.random() < 0.1:
            return start  # exactly at midnight of the first day: new in the first month
        return start + rng.randrange(28 * DAY)
    return start + rng.randrange(max(as_of - start - 10 * DAY, DAY))


def _account_created(rng: random.Random, first_start: int, as_of: int) -> int | None:
    if rng.random() < NO_CRM_SHARE:
        return None
    if rng.random() < CRM_LATE_SHARE:
        created = first_start + rng.randrange(DAY, 60 * DAY)
        return created if created < as_of else None
    return first_start - rng.randrange(HOUR, 45 * DAY)


def _contact_range(segment: str) -> tuple[int, int]:
    return {"smb": (0, 2), "mid_market": (1, 3), "enterprise": (1, 4)}[segment]


def _people(rng: random.Random, company: Company, count: int) -> list[tuple[str, str]]:
    """(clean email, full name) of the people at the company; emails unique to it.

    Free-mail addresses end in `.{index}`: digits after the last dot name the company, so
    no two companies can ever share one.
    """
    people, seen = [], set()
    for _ in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{first}.{last}"
        while local in seen:
            local += str(rng.randrange(10))
        seen.add(local)
        if company.domain:
            email = f"{local}@{company.domain}"
        else:
            email = f"{local}.{company.index}@{rng.choice(FREE_MAIL)}"
        people.append((email, f"{first.title()} {last.title()}"))
    return people


def _clean(email: str) -> str:
    return email.strip().lower()


# --- billing --------------------------------------------------------------------------------


def _billing_customer(rng, company, customer_id, first_start, people, has_account):
    roll = rng.random()
    if has_account and roll < 0.45:
        email = people[0][0]  # the primary contact pays
    elif company.domain and roll < 0.75:
        email = f"{rng.choice(('billing', 'finance', 'accounts'))}@{company.domain}"
    else:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{company.index}@{rng.choice(FREE_MAIL)}"
    return BillingCustomer(
        id=customer_id,
        email=written_email(rng, company, email),
        name=company.name,
        created=first_start - rng.randrange(60, HOUR),
        currency=company.currency,
        crm_account_id=(
            f"acc_{company.index:06d}" if has_account and rng.random() < METADATA_SHARE else None
        ),
    )


def _new_plan(rng: random.Random, segment: str) -> Plan:
    low, high = SEATS[segment]
    return Plan(
        tier=pick(rng, FIRST_TIER[segment]),
        plan=pick(rng, PLAN_SHARE[segment]),
        seats=rng.randrange(low, high + 1),
    )


def _story(ctx: Context) -> str:
    story = pick(ctx.rng, STORIES)
    if story == "involuntary" and ctx.pays_by_invoice:
        return "price"  # bank transfers do not bounce
    return story


def _live_on(ctx: Context, customer: BillingCustomer, first_start: int) -> None:
    """The lives of the main billing customer: a first one, then maybe comebacks."""
    rng, company = ctx.rng, ctx.company
    start, first = first_start, True
    hazard = MONTHLY_CHURN_HAZARD[company.segment]
    while start < ctx.as_of:
        life = Life(ctx, customer, _story(ctx), hazard)
        trial = first and rng.random() < TRIAL_SHARE[company.segment]
        addon = rng.random() < ADDON_SHARE
        stretch = life.run(start, _new_plan(rng, company.segment), trial, addon)
        company.stretches.append(stretch)
        if not stretch.churned or stretch.end >= ctx.as_of:
            return
        if rng.random() >= COMEBACK_SHARE.get(stretch.story, COMEBACK_DEFAULT):
            return
        start = stretch.end + rng.randrange(45, 300) * DAY + rng.randrange(DAY)
        first = False


def _second_customer(ctx: Context, ids: Ids, first_start: int) -> None:
    """A subsidiary paying on its own billing customer: the same customer when it ties."""
    rng, company = ctx.rng, ctx.company
    start = first_start + rng.randrange(30, 300) * DAY
    if start >= ctx.as_of:
        return
    email = (
        f"ap.{company.region}@{company.domain}"
        if company.domain and rng.random() < 0.6
        else f"{rng.choice(FIRST_NAMES)}.ap.{company.index}@{rng.choice(FREE_MAIL)}"
    )
    customer = BillingCustomer(
        id=ids.next("cus"),
        email=written_email(rng, company, email),
        name=f"{company.name} (APAC)",
        created=start - rng.randrange(60, HOUR),
        currency=company.currency,
        crm_account_id=f"acc_{company.index:06d}" if rng.random() < 0.5 else None,
    )
    company.billing_customers.append(customer)
    plan = Plan(tier=0, plan="monthly", seats=rng.randrange(1, 6))
    life = Life(ctx, customer, _story(ctx), MONTHLY_CHURN_HAZARD["smb"])
    company.stretches.append(life.run(start, plan, trial=False, addon=False))


def _close_billing_customers(rng: random.Random, company: Company, as_of: int) -> None:
    """Companies gone for good are sometimes deleted in billing too (their invoices remain)."""
    if _still_running(company):
        return
    for customer in company.billing_customers:
        customer.deleted = rng.random() < BILLING_DELETE_SHARE


def _leave_out_deleted(seed: int, company: Company) -> None:
    """Leave a share of the deleted billing customers out of the customer list, as Stripe does.

    Only those whose customer key stays the same without the customer object: the
    pipeline then ties them by CRM `accounts.billing_customer_id` (rule 2) alone, and
    the truth computes every key from what is written (`truth.identity`).
    """
    rng = random.Random(f"{seed}:{company.index}:unlisted")  # its own stream: no other draw moves
    for customer in company.billing_customers:
        if not customer.deleted or rng.random() >= UNLISTED_SHARE:
            continue
        key, rule = identity(company)[customer.id]
        customer.listed = False
        if rule is None or identity(company)[customer.id] != (key, 2):
            customer.listed = True


def _still_running(company: Company) -> bool:
    return any(sub.ended_at is None for sub in company.subscriptions)


def _last_end(company: Company) -> int | None:
    ends = [sub.ended_at for sub in company.subscriptions if sub.ended_at is not None]
    return max(ends) if ends else None


# --- CRM --------------------------------------------------------------------------------------


def _account(rng: random.Random, company: Company, created: int, as_of: int) -> Account:
    segment = company.segment
    low, high = {"smb": (3, 60), "mid_market": (50, 800), "enterprise": (500, 20000)}[segment]
    owner, csm = pick_staff(rng, "sales"), None
    if segment != "smb" or rng.random() < 0.1:
        csm = pick_staff(rng, "customer_success")
    changes = [created]
    span = max(as_of - created, 2 * DAY)
    if rng.random() < 0.2:  # owner reassigned
        owner = pick_staff(rng, "sales")
        changes.append(created + rng.randrange(DAY, span))
    employees = None if rng.random() < 0.05 else rng.randrange(low, high)
    if employees and rng.random() < 0.3:
        employees = max(1, int(employees * rng.uniform(0.8, 1.4)))
        changes.append(created + rng.randrange(DAY, span))
    main = company.billing_customers[0]
    account = Account(
        account_id=f"acc_{company.index:06d}",
        name=company.name,
        domain=_written_domain(rng, company.domain),
        industry=None if rng.random() < 0.1 else rng.choice(sorted(INDUSTRIES)),
        employee_count=employees,
        region=company.region,
        segment=segment,
        owner_id=owner,
        csm_id=csm,
        workspace_id=None if rng.random() < NO_WORKSPACE_SHARE else company.workspace_id,
        billing_customer_id=main.id if rng.random() < CRM_BILLING_ID_SHARE else None,
        created_at=created,
        updated_at=created,
    )
    last_end = _last_end(company)
    if not _still_running(company) and last_end is not None:
        deleted_at = last_end + rng.randrange(30, 120) * DAY
        if rng.random() < ACCOUNT_DELETE_SHARE and deleted_at < as_of:
            account.is_deleted = True
            changes.append(deleted_at)
    account.updated_at = min(max(changes), as_of - 1)
    return account


def _written_domain(rng: random.Random, domain: str | None) -> str | None:
    if domain and rng.random() < 0.15:
        return rng.choice((domain.upper(), domain.title()))
    return domain


def _contacts(rng, company: Company, people, as_of: int) -> list:
    account = company.account
    contacts = []
    for number, (email, name) in enumerate(people):
        created = account.created_at + (0 if number == 0 else rng.randrange(0, 200) * DAY)
        created = min(created, as_of - HOUR)
        updated = created
        if rng.random() < 0.1:
            updated = min(created + rng.randrange(DAY, 300 * DAY), as_of - 1)
        contacts.append(
            Contact(
                contact_id=f"con_{company.index:06d}{number + 1:02d}",
                account_id=account.account_id,
                email=written_email(rng, company, email),
                full_name=name,
                title=None if rng.random() < 0.3 else rng.choice(TITLES),
                is_primary=number == 0,
                created_at=created,
                updated_at=updated,
            )
        )
    return contacts


# --- the product ------------------------------------------------------------------------------


def _product_users(rng: random.Random, company: Company, people) -> list[ProductUser]:
    low, high = USERS[company.segment]
    count = rng.randrange(low, high + 1)
    users = []
    for number in range(count):
        if number < len(people):
            email = people[number][0]
        elif company.domain:
            email = f"user{number}@{company.domain}"
        else:
            email = f"user{number}.{company.index}@{rng.choice(FREE_MAIL)}"
        offset = OFFSETS[company.region] if rng.random() < 0.85 else rng.choice(ALL_OFFSETS)
        users.append(
            ProductUser(
                user_id=f"u_{company.index:06d}_{number:02d}",
                email=email,
                offset=offset,
                rate=rng.uniform(0.15, 0.55),
            )
        )
    return users
