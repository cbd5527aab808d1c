"""How one billing customer pays over time: trials, renewals, changes, saves and endings.

A *life* is one stretch of paying on one main subscription (a trial first,
maybe), with an optional add-on subscription renewing on the same days. It
ends by a voluntary cancellation (at period end or at once), by dunning that
gives up, or it is still running at as_of. Every object is left in its state
as of as_of: nothing is created after it, a cancellation scheduled later
stays scheduled, dunning not finished leaves the invoice open.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from churnhouse.devkit.simulator.catalog import (
    ADDON_PRICE,
    ADDON_PRODUCT,
    BILLING_COMMENTS,
    BILLING_FEEDBACK,
    OFFERS,
    OFFSETS,
    PLANS,
    REASON_TEXTS,
    SEAT_PRICE,
    SECOND_LINE,
    SURVEY_REASONS,
    TIERS,
    VAGUE_TEXTS,
)
from churnhouse.devkit.simulator.clock import DAY, HOUR, months_after
from churnhouse.devkit.simulator.draw import written_email
from churnhouse.devkit.simulator.model import (
    BillingCustomer,
    CancelResponse,
    Charge,
    Company,
    Invoice,
    Item,
    Line,
    Price,
    Stretch,
    Subscription,
)

MONTH = 30.44 * DAY
TRIAL_DAYS = 14
TRIAL_LAPSE_SHARE = 0.3
SURVEY_IN_FLOW_SHARE = 0.7  # voluntary cancellations that go through the in-app cancel flow
OFFER_SHARE = 0.55
OFFER_ACCEPT_SHARE = 0.35
SAVE_HOLDS_SHARE = 0.6
# Of declined offers: taken after all, and the customer leaves at once about 30 days later,
# an hour on either side of the deflection edge (metrics.md, Saves), so the edge is pinned.
EDGE_SAVE_SHARE = 0.5
IMMEDIATE_CANCEL_SHARE = 0.15
WELCOME_COUPON_SHARE = 0.08  # paid lives that start with a coupon (discount_amounts on lines)
FEEDBACK_SHARE = 0.55
PAYMENT_FAILURE_SHARE = 0.025  # renewals whose first charge fails (outside the involuntary story)
RECOVERY_SHARE = 0.8  # of those, dunning recovers
REISSUE_SHARE = 0.015  # renewal invoices voided and issued again with the right quantity
RETRY_DAYS = (0, 3, 5, 7)
GIVE_UP_DAYS = 14
FAILURE_CODES = ("card_declined", "expired_card", "card_declined", "insufficient_funds")


@dataclass
class Ids:
    """Stripe-like ids, unique per company and increasing in creation order."""

    index: int
    counters: dict[str, int] = field(default_factory=dict)

    def next(self, prefix: str) -> str:
        number = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = number
        return f"{prefix}_{self.index:06d}{number:04d}"


@dataclass
class Context:
    """What every life of a company shares."""

    company: Company
    rng: random.Random
    as_of: int
    ids: Ids
    pays_by_invoice: bool  # bank transfer on open invoices instead of card charges
    respondents: list[str]  # clean emails of the people who answer surveys
    # Welcome coupons draw from their own stream, so they move no other draw of the company.
    coupons: random.Random = field(default_factory=lambda: random.Random(0))

    def price(self, tier: int, plan: str) -> Price:
        return plan_price(tier, plan, self.company.currency)

    def addon_price(self) -> Price:
        return addon_price(self.company.currency)


def plan_price(tier: int, plan: str, currency: str) -> Price:
    """The catalog's price of a seat of `tier` on `plan` in `currency`."""
    interval, count, _, factor = PLANS[plan]
    unit = round(SEAT_PRICE[currency][tier] * factor)
    name = TIERS[tier]
    return Price(f"price_{name}_{plan}_{currency}", f"prod_{name}", unit, currency, interval, count)


def addon_price(currency: str) -> Price:
    price_id = f"price_insights_monthly_{currency}"
    return Price(price_id, ADDON_PRODUCT, ADDON_PRICE[currency], currency, "month", 1)


@dataclass
class Plan:
    tier: int
    plan: str
    seats: int
    discounted_periods: int = 0
    discount_id: str | None = None  # the coupon's discount (di_...) while it lasts
    discount_share: float = 0.3  # of the line amount
    pause_next: bool = False
    downgrade_next: bool = False

    @property
    def months(self) -> int:
        return PLANS[self.plan][2]


@dataclass
class Running:
    """A live subscription inside a life, with its billing rhythm."""

    sub: Subscription
    plan: Plan
    anchor: int
    periods: int  # number of period ends after `anchor` reached so far
    period_start: int
    period_end: int
    cancel_at: int | None = None
    is_addon: bool = False


class Life:
    """One paying life of a billing customer on a main subscription (+ maybe an add-on)."""

    def __init__(self, ctx: Context, customer: BillingCustomer, story: str, hazard: float):
        self.ctx, self.rng, self.as_of = ctx, ctx.rng, ctx.as_of
        self.customer, self.story, self.hazard = customer, story, hazard
        self.running: list[Running] = []
        self.agenda: list[tuple[int, int, str]] = []
        self.finished = False
        self.past_due: set[str] = set()  # subscriptions whose dunning as_of interrupted
        self.saved_once = False
        self.stretch: Stretch | None = None
        self.anchor = 0  # the billing day: start, or the end of the trial
        self.churn_at = 0  # when the story plays out

    # --- the whole life ---------------------------------------------------------------

    def run(self, start: int, plan: Plan, trial: bool, addon: bool) -> Stretch:
        self.stretch = Stretch(start=start, end=self.as_of, story=self.story)
        main = self._open(start, plan)
        anchor = start
        reason = "subscription_create"
        if trial:
            anchor = self._trial(main, start)
            if anchor is None:
                return self.stretch
            reason = "subscription_cycle"
        self.anchor = anchor
        self.churn_at = anchor + self._wait(self.hazard)
        self._first_period(main, anchor, reason, start)
        self._schedule(self.churn_at, "request")
        self._schedule(anchor + self._wait(0.04 if plan.months == 1 else 0.08), "seats")
        if addon:
            self._schedule(anchor + self.rng.randrange(15, 200) * DAY, "addon")
        self._loop()
        return self.stretch

    def _loop(self) -> None:
        step = 0
        while not self.finished:
            boundary = months_after(self.anchor, step + 1)
            self._act_until(min(boundary, self.as_of + 1))
            if self.finished:
                return
            if boundary > self.as_of:
                self._settle()
                return
            self._boundary(boundary)
            step += 1

    def _wait(self, monthly_rate: float) -> int:
        """Seconds until an event that happens `monthly_rate` times a month on average."""
        return int(self.rng.expovariate(monthly_rate) * MONTH)

    def _schedule(self, moment: int, action: str) -> None:
        self.agenda.append((moment, len(self.agenda), action))
        self.agenda.sort()

    def _act_until(self, limit: int) -> None:
        while self.agenda and self.agenda[0][0] < limit and not self.finished:
            moment, _, action = self.agenda.pop(0)
            if moment > self.as_of:
                continue
            getattr(self, f"_on_{action}")(moment)

    # --- subscriptions and invoices ------------------------------------------------------

    def _open(self, start: int, plan: Plan, addon: bool = False) -> Running:
        ctx = self.ctx
        price = ctx.addon_price() if addon else ctx.price(plan.tier, plan.plan)
        sub = Subscription(
            id=ctx.ids.next("sub"),
            customer=self.customer.id,
            created=start,
            items=[Item(ctx.ids.next("si"), price, plan.seats)],
        )
        ctx.company.subscriptions.append(sub)
        running = Running(sub, plan, start, 0, start, start, is_addon=addon)
        self.running.append(running)
        return running

    def _trial(self, main: Running, start: int) -> int | None:
        """A 14-day trial on a zero-amount line; the anchor of billing, or None if it lapsed."""
        end = start + TRIAL_DAYS * DAY
        sub = main.sub
        sub.trial_start, sub.trial_end = start, end
        sub.current_period_start, sub.current_period_end = start, end
        price = sub.items[0].price
        line = self._line(sub, price, main.plan.seats, 0, start, end)
        invoice = self._invoice(sub, start, "subscription_create", [line], start, start)
        invoice.status = "paid"
        if end > self.as_of:
            sub.status = "trialing"
            self.stretch.story = "trial"
            self.finished = True
            return None
        if self.rng.random() < TRIAL_LAPSE_SHARE:
            sub.status = "canceled"
            sub.cancel_reason = "cancellation_requested"
            if self.rng.random() < 0.5:  # canceled during the trial, effective at its end
                sub.canceled_at = start + self.rng.randrange(2 * DAY, (TRIAL_DAYS - 1) * DAY)
                sub.cancel_at_period_end = True
            else:
                sub.canceled_at = end
            sub.ended_at = end
            self.stretch.story, self.stretch.end = "trial", end
            self.stretch.cancel_requested, self.stretch.churned = sub.canceled_at, True
            self.finished = True
            return None
        return end

    def _line(
        self, sub, price, quantity, amount, start, end, proration=False, discounts=()
    ) -> Line:
        line_id, item = self.ctx.ids.next("il"), sub.items[0].id
        return Line(
            line_id, sub.id, price, quantity, amount, start, end, proration, item, discounts
        )

    def _invoice(self, sub, created, reason, lines, period_start, period_end) -> Invoice:
        invoice = Invoice(
            id=self.ctx.ids.next("in"),
            customer=self.customer.id,
            subscription=sub.id,
            currency=self.ctx.company.currency,
            created=created,
            billing_reason=reason,
            lines=lines,
            period_start=period_start,
            period_end=period_end,
        )
        self.ctx.company.invoices.append(invoice)
        return invoice

    def _charge(self, invoice: Invoice, moment: int, code: str | None) -> None:
        self.ctx.company.charges.append(
            Charge(
                id=self.ctx.ids.next("ch"),
                customer=self.customer.id,
                invoice=invoice.id,
                amount=invoice.amount_due,
                currency=invoice.currency,
                created=moment,
                status="failed" if code else "succeeded",
                failure_code=code,
            )
        )

    def _amount(self, running: Running) -> tuple[int, tuple[tuple[int, str], ...]]:
        """The period's line amount (before discounts) and its discount amounts."""
        plan, price = running.plan, running.sub.items[0].price
        full = price.unit_amount * plan.seats
        if plan.pause_next:
            plan.pause_next = False
            return 0, ()
        if plan.discounted_periods:
            plan.discounted_periods -= 1
            return full, ((full - round(full * (1 - plan.discount_share)), plan.discount_id),)
        return full, ()

    def _first_period(self, running: Running, start: int, reason: str, since: int) -> None:
        if not running.is_addon and self.ctx.coupons.random() < WELCOME_COUPON_SHARE:
            plan = running.plan  # a welcome coupon: 20% off the first periods
            plan.discounted_periods = 3 if plan.months == 1 else 1
            plan.discount_id, plan.discount_share = self.ctx.ids.next("di"), 0.2
        running.anchor, running.periods = start, 1
        running.period_start = start
        running.period_end = months_after(start, running.plan.months)
        invoice = self._period_invoice(running, start, reason, since, start)
        self._collect([invoice])

    def _period_invoice(self, running, created, reason, period_start, period_end) -> Invoice:
        sub, item = running.sub, running.sub.items[0]
        amount, discounts = self._amount(running)
        line = self._line(
            sub,
            item.price,
            running.plan.seats,
            amount,
            running.period_start,
            running.period_end,
            discounts=discounts,
        )
        sub.current_period_start, sub.current_period_end = line.start, line.end
        return self._invoice(sub, created, reason, [line], period_start, period_end)

    # --- payment ---------------------------------------------------------------------------

    def _collect(self, invoices: list[Invoice], fail: bool = False) -> None:
        """Pay `invoices` (created together): by card, maybe through dunning, or by transfer."""
        due = [invoice for invoice in invoices if invoice.amount_due > 0]
        for invoice in invoices:
            if invoice.amount_due == 0:
                invoice.status = "paid"
        if not due:
            return
        if self.ctx.pays_by_invoice:
            for invoice in due:
                self._pay_by_transfer(invoice)
            return
        if not fail and self.rng.random() >= PAYMENT_FAILURE_SHARE:
            for invoice in due:
                self._charge(invoice, invoice.created, None)
                invoice.status, invoice.attempt_count = "paid", 1
                invoice.amount_paid = invoice.amount_due
            return
        recover_at = None
        if not fail and self.rng.random() < RECOVERY_SHARE:
            recover_at = self.rng.randrange(1, len(RETRY_DAYS))
        self._dun(due, max(invoice.created for invoice in due), recover_at)

    def _pay_by_transfer(self, invoice: Invoice) -> None:
        paid = invoice.created + self.rng.randrange(5, 26) * DAY + self.rng.randrange(DAY)
        if paid <= self.as_of:
            self._charge(invoice, paid, None)
            invoice.status, invoice.attempt_count = "paid", 1
            invoice.amount_paid = invoice.amount_due
        else:
            invoice.status = "open"

    def _dun(self, invoices: list[Invoice], moment: int, recover_at: int | None) -> None:
        """Retries on days 0, 3, 5, 7; a success on attempt `recover_at`, else give up on day 14."""
        code = self.rng.choice(FAILURE_CODES)
        for attempt, days in enumerate(RETRY_DAYS):
            when = moment + days * DAY + (attempt and self.rng.randrange(HOUR, 6 * HOUR))
            if when > self.as_of:
                self._left_in_dunning(invoices)
                return
            success = attempt == recover_at
            for invoice in invoices:
                self._charge(invoice, when, None if success else code)
                invoice.attempt_count = attempt + 1
                if success:
                    invoice.status, invoice.amount_paid = "paid", invoice.amount_due
            if success:
                return
        give_up = moment + GIVE_UP_DAYS * DAY
        if give_up > self.as_of:
            self._left_in_dunning(invoices)
            return
        for invoice in invoices:
            invoice.status = "uncollectible"
        self._give_up(give_up, {invoice.subscription for invoice in invoices})

    def _give_up(self, moment: int, unpaid: set[str]) -> None:
        """Dunning failed: the unpaid subscriptions are cancelled (all of them with the main)."""
        # Mostly the billing system's automatic cancellation; sometimes staff cancel by hand.
        reason = "payment_failed" if self.rng.random() < 0.8 else "cancellation_requested"
        main = self._main()
        ending = (
            list(self.running)
            if main and main.sub.id in unpaid
            else [r for r in self.running if r.sub.id in unpaid]
        )
        for running in ending:
            self._end(running, moment, reason, canceled_at=moment)
        if self._main() is None:
            self.stretch.story = "involuntary"
            self.stretch.end, self.stretch.cancel_requested = moment, moment
            self.stretch.churned = True
            self.finished = True

    def _left_in_dunning(self, invoices: list[Invoice]) -> None:
        """as_of came before dunning ended: open invoices, their subscriptions past due."""
        for invoice in invoices:
            invoice.status = "open"
        self.past_due.update(invoice.subscription for invoice in invoices)
        self._settle()

    # --- at a renewal day ---------------------------------------------------------------------

    def _boundary(self, moment: int) -> None:
        ended_main = False
        for running in [r for r in self.running if r.cancel_at == moment]:
            self._end(running, moment, running.sub.cancel_reason)
            ended_main = ended_main or not running.is_addon
        if ended_main:
            for running in list(self.running):  # the add-on never outlives the main plan
                self._end(running, moment, "cancellation_requested", canceled_at=moment)
            self.stretch.end, self.stretch.churned = moment, True
            self.finished = True
            return
        renewing = [r for r in self.running if r.period_end == moment]
        if not renewing:
            return
        main_renews = any(not r.is_addon for r in renewing)
        fail = main_renews and self.story == "involuntary" and moment >= self.churn_at
        invoices = [self._renewal(running, moment) for running in renewing]
        self._collect(invoices, fail=fail)

    def _renewal(self, running: Running, moment: int) -> Invoice:
        previous_start = running.period_start
        if not running.is_addon:
            self._change_at_renewal(running)
        running.periods += 1
        running.period_start = moment
        running.period_end = months_after(running.anchor, running.periods * running.plan.months)
        if self.rng.random() < REISSUE_SHARE:
            reissued = moment + self.rng.randrange(HOUR, 2 * DAY)
            if reissued <= self.as_of:
                self._voided_invoice(running, moment, previous_start)
                return self._period_invoice(
                    running, reissued, "subscription_cycle", previous_start, moment
                )
        return self._period_invoice(running, moment, "subscription_cycle", previous_start, moment)

    def _months_since_anchor(self, moment: int) -> int:
        step = 0
        while months_after(self.anchor, step + 1) <= moment:
            step += 1
        return step

    def _voided_invoice(self, running: Running, moment: int, previous_start: int) -> None:
        """A renewal billed with a wrong quantity, voided once the right one is issued."""
        sub, item = running.sub, running.sub.items[0]
        wrong = running.plan.seats + self.rng.randrange(1, 6)
        line = self._line(
            sub,
            item.price,
            wrong,
            item.price.unit_amount * wrong,
            running.period_start,
            running.period_end,
        )
        invoice = self._invoice(sub, moment, "subscription_cycle", [line], previous_start, moment)
        invoice.status = "void"

    def _change_at_renewal(self, running: Running) -> None:
        plan, rng = running.plan, self.rng
        yearly = plan.months == 12
        if plan.downgrade_next:
            plan.downgrade_next = False
            if plan.tier > 0:
                plan.tier -= 1
            else:
                plan.seats = max(1, plan.seats - 1)
        elif rng.random() < (0.12 if yearly else 0.02) and plan.tier < len(TIERS) - 1:
            plan.tier += 1
        elif rng.random() < (0.05 if yearly else 0.01) and plan.tier > 0:
            plan.tier -= 1
        if rng.random() < (0.4 if yearly else 0.06):
            change = rng.choice((-2, -1, 1, 1, 2, 3, 5))
            plan.seats = max(1, plan.seats + change * (1 + plan.seats // 20))
        running.sub.items[0].price = self.ctx.price(plan.tier, plan.plan)
        running.sub.items[0].quantity = plan.seats

    # --- things that happen between renewals ---------------------------------------------------

    def _main(self) -> Running | None:
        return next((r for r in self.running if not r.is_addon), None)

    def _on_seats(self, moment: int) -> None:
        """Seats added mid-period: a subscription_update invoice with a proration line."""
        main = self._main()
        months = 0.04 if main and main.plan.months == 1 else 0.08
        self._schedule(moment + self._wait(months), "seats")
        if main is None or main.cancel_at is not None or moment <= main.period_start:
            return
        added = self.rng.randrange(1, 4) * (1 + main.plan.seats // 15)
        before = main.plan.seats
        main.plan.seats += added
        item = main.sub.items[0]
        item.quantity = main.plan.seats
        share = (main.period_end - moment) / (main.period_end - main.period_start)
        amount = round(item.price.unit_amount * added * share)
        # Stripe's two proration lines: unused time on the old quantity credited, remaining
        # time on the new one charged; together the price of the added seats.
        credit = round(item.price.unit_amount * before * share)
        end, seats = main.period_end, main.plan.seats
        lines = [
            self._line(main.sub, item.price, before, -credit, moment, end, True),
            self._line(main.sub, item.price, seats, credit + amount, moment, end, True),
        ]
        invoice = self._invoice(main.sub, moment, "subscription_update", lines, moment, moment)
        self._collect([invoice])

    def _on_addon(self, moment: int) -> None:
        main = self._main()
        if main is None or main.cancel_at is not None:
            return
        plan = Plan(tier=0, plan="monthly", seats=1)
        addon = self._open(moment, plan, addon=True)
        # It renews on the main plan's billing day: the first period runs to the next one.
        addon.anchor, addon.periods = self.anchor, self._months_since_anchor(moment) + 1
        addon.period_start = moment
        addon.period_end = months_after(self.anchor, addon.periods)
        invoice = self._period_invoice(addon, moment, "subscription_create", moment, moment)
        self._collect([invoice])
        self._schedule(moment + self.rng.randrange(60, 400) * DAY, "addon_cancel")

    def _on_addon_cancel(self, moment: int) -> None:
        """Contraction: the add-on is cancelled at its period end, the main plan stays."""
        addon = next((r for r in self.running if r.is_addon), None)
        if addon is None or addon.cancel_at is not None:
            return
        if self.rng.random() < 0.5:
            reason = self.rng.choice(("unused", "too_expensive"))
            self._survey(moment, addon.sub.id, reason, "none", False, "canceled")
        sub = addon.sub
        sub.canceled_at, sub.cancel_at_period_end = moment, True
        sub.cancel_reason = "cancellation_requested"
        sub.feedback = "unused" if self.rng.random() < 0.5 else None
        addon.cancel_at = addon.period_end

    def _on_request(self, moment: int) -> None:
        """The customer decides to leave (or, in the involuntary story, stops paying)."""
        main = self._main()
        if self.story == "involuntary" or main is None or main.cancel_at is not None:
            return
        if self._offer_saves(moment, main):
            return
        self._cancel(moment, main)

    def _on_recancel(self, moment: int) -> None:
        main = self._main()
        if main is None or main.cancel_at is not None:
            return
        if self.rng.random() < 0.5:
            self._survey(moment, main.sub.id, self._reason(), "none", False, "canceled")
        self._cancel(moment, main)

    def _on_edge_leave(self, moment: int) -> None:
        """Cancelled with immediate effect, about 30 days after a save."""
        main = self._main()
        if main is None or main.cancel_at is not None:
            return
        self._cancel(moment, main, immediate=True)

    def _offer_saves(self, moment: int, main: Running) -> bool:
        """The cancel flow: a survey, maybe an offer; True when the customer is saved."""
        rng = self.rng
        if rng.random() >= SURVEY_IN_FLOW_SHARE:
            return False
        offers = [o for o in OFFERS[self.story] if o != "pause" or main.plan.months == 1]
        offer = rng.choice(offers) if offers and rng.random() < OFFER_SHARE else "none"
        can_save = offer != "none" and not self.saved_once
        saved = can_save and rng.random() < OFFER_ACCEPT_SHARE
        edge = can_save and not saved and rng.random() < EDGE_SAVE_SHARE
        saved = saved or edge
        self._survey(
            moment, main.sub.id, self._reason(), offer, saved, "saved" if saved else "canceled"
        )
        if not saved:
            return False
        self.saved_once = True
        if offer == "discount":
            main.plan.discounted_periods = 3 if main.plan.months == 1 else 1
            main.plan.discount_id, main.plan.discount_share = self.ctx.ids.next("di"), 0.3
        elif offer == "pause":
            main.plan.pause_next = True
        elif offer == "downgrade":
            main.plan.downgrade_next = True
        if edge:
            side = HOUR if self.ctx.company.index % 2 else -HOUR  # odd companies: after
            self._schedule(moment + 30 * DAY + side, "edge_leave")
        elif rng.random() < SAVE_HOLDS_SHARE:
            self._schedule(moment + self._wait(self.hazard * 1.5), "request")
        else:
            self._schedule(moment + rng.randrange(3, 29) * DAY, "recancel")
        return True

    def _reason(self) -> str:
        return self.rng.choice(SURVEY_REASONS[self.story])

    def _survey(self, moment, subscription_id, reason, offer, accepted, outcome) -> None:
        rng, ctx = self.rng, self.ctx
        roll = rng.random()
        primary = reason
        english, chinese = REASON_TEXTS[reason]
        text = chinese if rng.random() < 0.35 else english
        if roll < 0.15:  # the reason only in words
            primary = ""
        elif roll < 0.22:
            primary, text = "other", text if rng.random() < 0.5 else rng.choice(VAGUE_TEXTS)
        elif roll < 0.35:
            text = ""
        if text and rng.random() < 0.12:
            text = f"{text}\n{rng.choice(SECOND_LINE)}"
        email = rng.choice(ctx.respondents) if ctx.respondents else ""
        # a few answers come without an email (they still tie by subscription)
        written = written_email(rng, ctx.company, email) if rng.random() >= 0.04 else ""
        sub_id = subscription_id if rng.random() >= 0.15 or not written else ""
        company = ctx.company
        company.cancel_responses.append(
            CancelResponse(
                response_id=f"resp_{company.index:06d}{len(company.cancel_responses) + 1:03d}",
                submitted_at=moment - rng.randrange(30, 900),
                offset=OFFSETS[company.region],
                email=written,
                subscription_id=sub_id,
                primary_reason=primary,
                reason_text=text,
                offer_presented=offer,
                offer_accepted=accepted,
                outcome=outcome,
            )
        )

    def _cancel(self, moment: int, main: Running, immediate: bool | None = None) -> None:
        rng = self.rng
        sub = main.sub
        drawn = rng.random() < IMMEDIATE_CANCEL_SHARE
        immediate = drawn if immediate is None else immediate
        if rng.random() < FEEDBACK_SHARE:
            sub.feedback = rng.choice(BILLING_FEEDBACK[self.story])
            if rng.random() < 0.3:
                sub.comment = rng.choice(BILLING_COMMENTS)
        self.stretch.cancel_requested = moment
        for running in list(self.running):
            if running.cancel_at is None:  # else an add-on already on its way out
                running.sub.canceled_at = moment
                running.sub.cancel_reason = "cancellation_requested"
                running.sub.cancel_at_period_end = not immediate
                running.cancel_at = running.period_end
            if immediate:
                self._end(running, moment, "cancellation_requested")
        if immediate:
            self.stretch.end, self.stretch.churned = moment, True
            self.finished = True
        else:
            self.stretch.end = main.period_end

    def _end(self, running: Running, ended_at: int, reason: str | None, canceled_at=None) -> None:
        """Service stops at `ended_at`; `canceled_at` keeps the request time unless given."""
        sub = running.sub
        if canceled_at is not None or sub.canceled_at is None:
            sub.canceled_at = ended_at if canceled_at is None else canceled_at
        sub.ended_at, sub.status, sub.cancel_reason = ended_at, "canceled", reason
        self.running.remove(running)

    def _settle(self) -> None:
        """Still running at as_of: statuses as the billing system shows them then."""
        for running in self.running:
            running.sub.status = "past_due" if running.sub.id in self.past_due else "active"
        self.finished = True
