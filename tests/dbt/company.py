"""A small hand-written company in the raw layer, for the dbt models' end-to-end tests.

Reporting as of 2024-07-01 00:00 UTC (months January to June 2024). Each customer
shows one rule of `docs/metrics.md`; EXPECTED_* below are worked out by hand
from that text, not from the models.

| customer | identity | story |
|---|---|---|
| acc_01 | rule 1 (metadata) | 100 USD/month, upgraded to 150 in April (a proration line ignored); smb -> mid_market on 15 Mar; a saved cancellation |
| acc_02 | rule 2 (account's billing id) | 1200 EUR/year from 15 Feb, EUR rate of February 1.08 -> 108/month |
| acc_03 | rule 3 (contact e-mail, case and spaces) | 700 CNY/month; rate 0.14, 0.13 from April (contraction); period-end cancel 20 Apr -> churn 1 May; survey in Chinese -> price |
| acc_04 | rule 4 (domain; a deleted account shares it) | trial 10-24 Jan converts, 500 USD/month from 24 Jan |
| cus_05 | unmatched (free-mail domain) | trial that lapses: never active |
| acc_06 | rule 1, account deleted later | 50 USD/month, immediate cancel 10 Mar 08:00; survey text "bugs" -> product_quality |
| acc_07 | rule 2 | 200 USD/month from Feb; April invoice uncollectible, charges failed -> involuntary churn 1 Apr |
| acc_08 | rule 1 | two subscriptions 300 + 100 (from Feb); the 100 one cancelled at period end 1 May (contraction, no churn) |
| acc_09 | rule 1 | 80 USD/month Jan-Feb, churn 1 Mar after a complaint; back on 10 May (reactivation) |
| acc_10 | rule 1 | 120 USD/month starting 5 Mar, cancelled immediately 20 Mar (in no monthly count); two surveys |
| cus_11 | unmatched (no CRM trace) | 20 USD every 2 weeks -> 43.333333333333/month |
| acc_12 | rule 1 | 15000 JPY/month (zero-decimal) from June at 0.0067 -> 100.50 |
| acc_14 | cus_14a rule 1, cus_14b rule 3 | two billing customers, one company: 30 from April, +20 from May |
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from churnhouse.load import ensure_raw_tables
from churnhouse.sources.billing.extract import (
    CHARGES,
    CUSTOMERS,
    INVOICES,
    PRICES,
    SUBSCRIPTIONS,
)
from churnhouse.sources.crm.extract import CRM_TABLES
from churnhouse.sources.events.extract import EVENTS
from churnhouse.sources.fx import FX_RATES
from churnhouse.sources.surveys.extract import CANCELLATIONS, NPS
from churnhouse.warehouse import open_warehouse

AS_OF = datetime(2024, 7, 1)
LOADED_AT = datetime(2024, 7, 1, 0, 30)
RUN_ID = "company-fixture"


def ts(text: str) -> datetime:
    """ISO-8601 text (any offset, none = UTC) as a naive UTC datetime, as the loaders store it."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def months(first: str, count: int) -> list[tuple[datetime, datetime]]:
    """`count` consecutive calendar-month periods starting at `first` (YYYY-MM-DD)."""
    start = ts(first)
    periods = []
    for _ in range(count):
        end = datetime(start.year + start.month // 12, start.month % 12 + 1, start.day)
        periods.append((start, end))
        start = end
    return periods


class Company:
    """Rows per raw table, added through small helpers; `write(url)` loads them."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {}
        self._invoice = 0
        self._charge = 0

    def add(self, table: str, **row) -> None:
        self.rows.setdefault(table, []).append(row)

    # CRM -----------------------------------------------------------------------------------
    def account(self, account_id: str, segment: str, region: str, updated_at: str, **extra):
        self.add(
            "crm_accounts",
            account_id=account_id,
            name=f"Company {account_id}",
            domain=extra.get("domain"),
            industry="software",
            employee_count=50,
            region=region,
            segment=segment,
            owner_id="usr_sales_1",
            csm_id=extra.get("csm_id", "usr_cs_1"),
            workspace_id=extra.get("workspace_id"),
            billing_customer_id=extra.get("billing_customer_id"),
            created_at=ts("2023-11-01"),
            is_deleted=extra.get("is_deleted", False),
            updated_at=ts(updated_at),
            raw="{}",
        )

    def contact(self, contact_id: str, account_id: str, email: str) -> None:
        self.add(
            "crm_contacts",
            contact_id=contact_id,
            account_id=account_id,
            email=email,
            full_name=f"Person {contact_id}",
            title="ops",
            is_primary=True,
            created_at=ts("2023-11-01"),
            updated_at=ts("2023-11-01"),
            raw="{}",
        )

    def activity(self, activity_id, account_id, kind, occurred_at, subject, body=None) -> None:
        self.add(
            "crm_activities",
            activity_id=activity_id,
            account_id=account_id,
            user_id="usr_cs_1",
            type=kind,
            occurred_at=ts(occurred_at),
            subject=subject,
            body=body,
            updated_at=ts(occurred_at),
            raw="{}",
        )

    # Billing -------------------------------------------------------------------------------
    def customer(self, customer_id: str, email: str | None, crm_account_id: str | None = None):
        self.add(
            "billing_customers",
            id=customer_id,
            email=email,
            name=f"Billing {customer_id}",
            created=ts("2023-12-01"),
            currency="usd",
            crm_account_id=crm_account_id,
            deleted=False,
            raw="{}",
        )

    def subscription(self, subscription_id: str, customer_id: str, **fields) -> None:
        row = {
            "id": subscription_id,
            "customer": customer_id,
            "status": "active",
            "created": ts("2023-12-15"),
            "start_date": ts("2024-01-01"),
            "trial_start": None,
            "trial_end": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "ended_at": None,
            "current_period_start": None,
            "current_period_end": None,
            "cancellation_reason": None,
            "cancellation_feedback": None,
            "cancellation_comment": None,
            "raw": "{}",
        }
        for key, value in fields.items():
            is_time = isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}", value)
            row[key] = ts(value) if is_time else value
        self.add("billing_subscriptions", **row)

    def invoice(
        self,
        customer_id: str,
        subscription_id: str | None,
        lines: list[dict],
        status: str = "paid",
        currency: str = "usd",
        created: datetime | None = None,
    ) -> str:
        self._invoice += 1
        invoice_id = f"in_{self._invoice:04d}"
        first = lines[0]
        created = created or first["start"]
        self.add(
            "billing_invoices",
            id=invoice_id,
            customer=customer_id,
            subscription=subscription_id,
            status=status,
            currency=currency,
            created=created,
            # The header's period is deliberately wrong: only the lines' periods count.
            period_start=created - timedelta(days=31),
            period_end=created,
            amount_due=sum(line["amount"] for line in lines),
            amount_paid=sum(line["amount"] for line in lines) if status == "paid" else 0,
            attempt_count=1,
            billing_reason="subscription_cycle",
            raw="{}",
        )
        for index, line in enumerate(lines):
            self.add(
                "billing_invoice_lines",
                invoice_id=invoice_id,
                line_id=f"il_{self._invoice:04d}_{index}",
                subscription=line.get("subscription", subscription_id),
                price_id="price_x",
                product="prod_x",
                currency=currency,
                unit_amount=line["amount"],
                recurring_interval=line.get("interval", "month"),
                recurring_interval_count=line.get("interval_count", 1),
                quantity=1,
                amount=line["amount"],
                period_start=line["start"],
                period_end=line["end"],
                proration=line.get("proration", False),
                raw="{}",
            )
        return invoice_id

    def monthly(self, customer_id, subscription_id, amount, periods, currency="usd", **kw):
        """One paid invoice per period, each with one line."""
        for start, end in periods:
            self.invoice(
                customer_id,
                subscription_id,
                [{"amount": amount, "start": start, "end": end}],
                currency=currency,
                **kw,
            )

    def charge(self, customer_id, invoice_id, created: str, status: str, amount=0) -> None:
        self._charge += 1
        self.add(
            "billing_charges",
            id=f"ch_{self._charge:04d}",
            customer=customer_id,
            invoice=invoice_id,
            amount=amount,
            currency="usd",
            created=ts(created),
            status=status,
            failure_code="card_declined" if status == "failed" else None,
            raw="{}",
        )

    def fx(self, currency: str, month: str, rate: str) -> None:
        self.add("fx_rates", currency=currency, month=month, rate_to_usd=rate)

    # Events and surveys -------------------------------------------------------------------
    def event(self, message_id, workspace_id, user_id, at: str, name="login", kind="track"):
        moment = ts(at)
        self.add(
            "events",
            message_id=message_id,
            type=kind,
            event=name,
            user_id=user_id,
            group_id=workspace_id,
            event_at=moment,
            received_at=moment,
            timestamp_raw=at,
            email=None,
            properties="{}",
            raw="{}",
            dt=moment.date(),
            file=f"dt={moment.date()}/part-0000.jsonl.gz",
            line=1,
            _pick=message_id,
            # Loaded an hour after it happened: the incremental model keys on load time.
            _loaded_at=moment + timedelta(hours=1),
        )

    def cancellation(
        self,
        response_id,
        submitted_at,
        email,
        subscription_id,
        reason,
        text,
        outcome,
        offer="none",
        accepted="false",
    ):
        self.add(
            "survey_cancellations",
            response_id=response_id,
            submitted_at=ts(submitted_at),
            submitted_at_raw=submitted_at,
            email=email,
            subscription_id=subscription_id,
            primary_reason=reason,
            reason_text=text,
            offer_presented=offer,
            offer_accepted=accepted,
            outcome=outcome,
            raw="{}",
            file="cancellation/2024.csv",
            line=2,
            _pick=response_id,
        )

    def nps(self, response_id, submitted_at, email, score, comment=None) -> None:
        self.add(
            "survey_nps",
            response_id=response_id,
            submitted_at=ts(submitted_at),
            submitted_at_raw=submitted_at,
            email=email,
            score=score,
            comment=comment,
            raw="{}",
            file="nps/2024.csv",
            line=2,
            _pick=response_id,
        )

    # Loading ------------------------------------------------------------------------------
    def write(self, url: str) -> None:
        """Create the raw tables (the loader's own DDL) and insert every row."""
        tables = {
            **{table.name: table for table in CRM_TABLES.values()},
            **{
                table.name: table
                for table in (PRICES, CUSTOMERS, SUBSCRIPTIONS, INVOICES, CHARGES, FX_RATES, EVENTS)
            },
            CANCELLATIONS.name: CANCELLATIONS,
            NPS.name: NPS,
            INVOICES.children[0].name: INVOICES.children[0],
        }
        with open_warehouse(url).transaction() as tx:
            ensure_raw_tables(tx, [t for t in tables.values() if t.name != "billing_invoice_lines"])
            for name, rows in self.rows.items():
                table = tables[name]
                columns = list(table.all_columns)
                sql = (
                    f"INSERT INTO {table.qualified_name} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})"
                )
                for row in rows:
                    full = {**row, "_source": name.split("_")[0], "_run_id": RUN_ID}
                    full.setdefault("_loaded_at", LOADED_AT)
                    tx.execute(sql, [full.get(column) for column in columns])


def query(url: str, sql: str) -> list[tuple]:
    """Rows of one query on the warehouse at `url` (DuckDB path or PostgreSQL URL)."""
    with open_warehouse(url).transaction() as tx:
        return tx.fetchall(sql)


def build_company() -> Company:
    c = Company()
    jan = "2024-01-01"

    # acc_01: rule 1; upgrade in April; segment change on 15 Mar; a saved cancellation.
    c.account("acc_01", "smb", "na", "2023-12-01", domain="acme.io", workspace_id="ws_01")
    c.account("acc_01", "mid_market", "na", "2024-03-15", domain="acme.io", workspace_id="ws_01")
    c.customer("cus_01", "billing@acme.io", crm_account_id="acc_01")
    c.subscription("sub_01", "cus_01")
    c.monthly("cus_01", "sub_01", 10000, months(jan, 3))
    april, *later = months("2024-04-01", 4)
    c.invoice(
        "cus_01",
        "sub_01",
        [
            {"amount": 15000, "start": april[0], "end": april[1]},
            {"amount": 2500, "start": ts("2024-04-01"), "end": ts("2024-05-01"), "proration": True},
        ],
    )
    c.monthly("cus_01", "sub_01", 15000, later)
    c.cancellation(
        "resp_01",
        "2024-05-10T09:00:00",
        " Billing@ACME.io",
        "sub_01",
        "too_expensive",
        "",
        "saved",
        "discount",
        "true",
    )
    for day in (3, 4, 5):
        c.event(f"ev_01_u1_{day}", "ws_01", "u1", f"2024-06-{day:02d}T10:00:00")
    c.event("ev_01_u2_4", "ws_01", "u2", "2024-06-04T11:00:00")
    c.event("ev_01_u2_4b", "ws_01", "u2", "2024-06-04T15:00:00")
    c.event("ev_01_id", "ws_01", "u3", "2024-06-07T15:00:00", name=None, kind="identify")
    c.event("ev_01_proj", "ws_01", "u1", "2024-01-05T10:00:00", name="project_created")
    c.nps("nps_01a", "2024-06-05T10:00:00", "billing@acme.io", 9)
    c.nps("nps_01b", "2024-06-20T10:00:00", "BILLING@acme.io ", 6)

    # acc_02: rule 2; yearly EUR at the rate of February (the line's period start).
    c.account(
        "acc_02",
        "mid_market",
        "emea",
        "2023-12-01",
        billing_customer_id="cus_02",
        domain="globex.de",
    )
    c.customer("cus_02", "finance@globex-mail.de")
    c.subscription("sub_02", "cus_02")
    c.invoice(
        "cus_02",
        "sub_02",
        [
            {
                "amount": 120000,
                "start": ts("2024-02-15"),
                "end": ts("2025-02-15"),
                "interval": "year",
            }
        ],
        currency="eur",
        created=ts("2024-03-02"),
    )
    c.fx("EUR", "2024-01", "1.09")
    c.fx("eur", "2024-02", "1.08")
    c.fx("eur", "2024-03", "1.07")
    c.nps("nps_02", "2024-06-10T10:00:00", "cfo@globex.de", 10)
    c.contact("con_02", "acc_02", "cfo@globex.de")

    # acc_03: rule 3; CNY with a rate change; period-end cancellation; Chinese survey text.
    c.account("acc_03", "smb", "apac", "2023-12-01", domain="initech.cn", workspace_id="ws_03")
    c.contact("con_03", "acc_03", "ops@initech.cn ")
    c.customer("cus_03", "  Ops@Initech.CN ")
    c.subscription(
        "sub_03",
        "cus_03",
        status="canceled",
        cancel_at_period_end=True,
        canceled_at="2024-04-20T10:00:00",
        ended_at="2024-05-01T00:00:00",
        cancellation_reason="cancellation_requested",
        cancellation_feedback="too_expensive",
        cancellation_comment="budget",
    )
    c.monthly("cus_03", "sub_03", 70000, months(jan, 4), currency="cny")
    for month, rate in (
        ("2024-01", "0.14"),
        ("2024-02", "0.14"),
        ("2024-03", "0.14"),
        ("2024-04", "0.13"),
    ):
        c.fx("cny", month, rate)
    # acc_03's NPS: a passive 8 before its churn (nps_last), a 7 after it (not nps_last).
    c.nps("nps_03a", "2024-04-05T10:00:00+08:00", "ops@initech.cn", 8)
    c.nps("nps_03b", "2024-05-03T10:00:00Z", " OPS@initech.cn", 7)
    c.cancellation(
        "resp_03",
        "2024-04-20T17:55:00+08:00",
        "ops@initech.cn",
        "sub_03",
        "",
        "价格太贵了,明年再看",
        "canceled",
    )
    c.event("ev_03", "ws_03", "u31", "2024-04-25T12:00:00")

    # acc_04: rule 4 (a deleted account shares the domain); trial converts on 24 Jan.
    c.account(
        "acc_04", "enterprise", "emea", "2023-12-01", domain="Umbrella.com", workspace_id="ws_04"
    )
    c.account("acc_04old", "smb", "emea", "2023-12-01", domain="umbrella.com", is_deleted=True)
    c.customer("cus_04", "it@umbrella.com")
    c.subscription(
        "sub_04", "cus_04", trial_start="2024-01-10T00:00:00", trial_end="2024-01-24T00:00:00"
    )
    c.invoice(
        "cus_04", "sub_04", [{"amount": 0, "start": ts("2024-01-10"), "end": ts("2024-01-24")}]
    )
    c.monthly("cus_04", "sub_04", 50000, months("2024-01-24", 6))
    c.event("ev_04_proj_trial", "ws_04", "u41", "2024-01-15T10:00:00", name="project_created")
    c.event("ev_04_proj_late", "ws_04", "u41", "2024-02-10T10:00:00", name="project_created")

    # cus_05: free-mail domain matches no account; the trial lapses.
    c.account("acc_gmail", "smb", "na", "2023-12-01", domain="gmail.com")
    c.customer("cus_05", "someone@gmail.com")
    c.subscription("sub_05", "cus_05", status="incomplete_expired", ended_at="2024-03-15T00:00:00")
    c.invoice(
        "cus_05", "sub_05", [{"amount": 0, "start": ts("2024-03-01"), "end": ts("2024-03-15")}]
    )

    # acc_06: rule 1 to an account deleted later; immediate cancellation on 10 Mar 08:00.
    c.account("acc_06", "smb", "latam", "2023-12-01")
    c.account("acc_06", "smb", "latam", "2024-03-20", is_deleted=True)
    c.customer("cus_06", "admin@hooli.xyz", crm_account_id="acc_06")
    c.subscription(
        "sub_06",
        "cus_06",
        status="canceled",
        canceled_at="2024-03-10T08:00:00",
        ended_at="2024-03-10T08:00:00",
        cancellation_reason="cancellation_requested",
        cancellation_feedback="missing_features",
    )
    c.monthly("cus_06", "sub_06", 5000, months(jan, 3))
    c.cancellation(
        "resp_06",
        "2024-03-10T07:50:00Z",
        "admin@hooli.xyz",
        "",
        "",
        "Too many bugs, it keeps crashing",
        "canceled",
    )

    # acc_07: rule 2; the April invoice is uncollectible -> involuntary churn on 1 Apr.
    c.account(
        "acc_07",
        "mid_market",
        "na",
        "2023-12-01",
        billing_customer_id="cus_07",
        workspace_id="ws_07",
    )
    c.customer("cus_07", "ap@stark.com")
    c.subscription(
        "sub_07",
        "cus_07",
        status="canceled",
        canceled_at="2024-04-15T00:00:00",
        ended_at="2024-04-15T00:00:00",
        cancellation_reason="payment_failed",
    )
    feb_mar = months("2024-02-01", 2)
    c.monthly("cus_07", "sub_07", 20000, feb_mar)
    unpaid = c.invoice(
        "cus_07",
        "sub_07",
        [{"amount": 20000, "start": ts("2024-04-01"), "end": ts("2024-05-01")}],
        status="uncollectible",
    )
    c.charge("cus_07", unpaid, "2024-04-01T01:00:00", "failed")
    c.charge("cus_07", unpaid, "2024-04-05T01:00:00", "failed")
    c.event("ev_07", "ws_07", "u71", "2024-03-28T09:00:00")

    # acc_08: rule 1; two subscriptions, the second cancelled at its period end.
    c.account("acc_08", "enterprise", "apac", "2023-12-01")
    c.customer("cus_08", "it@wayne.com", crm_account_id="acc_08")
    c.subscription("sub_08a", "cus_08")
    c.monthly("cus_08", "sub_08a", 30000, months(jan, 7))
    c.subscription(
        "sub_08b",
        "cus_08",
        status="canceled",
        cancel_at_period_end=True,
        canceled_at="2024-04-10T00:00:00",
        ended_at="2024-05-01T00:00:00",
        cancellation_reason="cancellation_requested",
        cancellation_feedback="unused",
        cancellation_comment="the team does not use it",
    )
    c.monthly("cus_08", "sub_08b", 10000, months("2024-02-01", 3))

    # acc_09: rule 1; churn 1 Mar after a complaint, back on 10 May.
    c.account("acc_09", "smb", "na", "2023-12-01")
    c.customer("cus_09", "it@cyberdyne.com", crm_account_id="acc_09")
    c.subscription(
        "sub_09a",
        "cus_09",
        status="canceled",
        cancel_at_period_end=True,
        canceled_at="2024-02-15T00:00:00",
        ended_at="2024-03-01T00:00:00",
    )
    c.monthly("cus_09", "sub_09a", 8000, months(jan, 2))
    c.subscription("sub_09b", "cus_09", start_date="2024-05-10T00:00:00")
    c.monthly("cus_09", "sub_09b", 8000, months("2024-05-10", 2))
    c.activity(
        "act_09",
        "acc_09",
        "complaint",
        "2024-02-20T10:00:00",
        "Support never answered",
        "three tickets, no reply",
    )
    c.activity("act_09_old", "acc_09", "complaint", "2023-10-01T10:00:00", "Dashboard outage")
    c.activity(
        "act_09_call", "acc_09", "call", "2024-02-21T10:00:00", "We are unhappy with the price"
    )

    # acc_10: rule 1; starts 5 Mar, cancelled immediately 20 Mar; two surveys.
    c.account("acc_10", "mid_market", "emea", "2023-12-01", workspace_id="ws_10")
    c.customer("cus_10", "it@soylent.com", crm_account_id="acc_10")
    c.subscription(
        "sub_10",
        "cus_10",
        status="canceled",
        canceled_at="2024-03-20T00:00:00",
        ended_at="2024-03-20T00:00:00",
        cancellation_reason="cancellation_requested",
    )
    c.monthly("cus_10", "sub_10", 12000, months("2024-03-05", 1))
    c.cancellation(
        "resp_10b",
        "2024-03-18T10:00:00Z",
        "it@soylent.com",
        "sub_10",
        "too_expensive",
        "",
        "canceled",
    )
    c.cancellation(
        "resp_10a",
        "2024-03-19T10:00:00Z",
        "it@soylent.com",
        "sub_10",
        "switched_service",
        "switched to a competitor",
        "canceled",
    )

    # cus_11: no CRM trace; 20 USD every 2 weeks.
    c.customer("cus_11", "anna@northwind.io")
    c.subscription("sub_11", "cus_11")
    start = ts(jan)
    while start < ts("2024-07-15"):
        end = start + timedelta(days=14)
        c.invoice(
            "cus_11",
            "sub_11",
            [{"amount": 2000, "start": start, "end": end, "interval": "week", "interval_count": 2}],
        )
        start = end

    # acc_12: rule 1; JPY is a zero-decimal currency.
    c.account("acc_12", "smb", "apac", "2023-12-01")
    c.customer("cus_12", "it@yen.jp", crm_account_id="acc_12")
    c.subscription("sub_12", "cus_12")
    c.monthly("cus_12", "sub_12", 15000, months("2024-06-01", 1), currency="jpy")
    c.invoice(
        "cus_12",
        "sub_12",
        [{"amount": 15000, "start": ts("2024-07-01"), "end": ts("2024-08-01")}],
        currency="jpy",
        status="open",
    )
    c.fx("jpy", "2024-06", "0.0067")
    c.fx("jpy", "2024-07", "0.0070")

    # acc_14: two billing customers, one company.
    c.account("acc_14", "smb", "emea", "2023-12-01")
    c.contact("con_14", "acc_14", "second@fourteen.com")
    c.customer("cus_14a", "first@fourteen.com", crm_account_id="acc_14")
    c.customer("cus_14b", "second@fourteen.com")
    c.subscription("sub_14a", "cus_14a")
    c.subscription("sub_14b", "cus_14b")
    c.monthly("cus_14a", "sub_14a", 3000, months("2024-04-01", 4))
    c.monthly("cus_14b", "sub_14b", 2000, months("2024-05-01", 3))

    # Records tied to no customer.
    c.account("acc_prospect", "smb", "na", "2023-12-01", workspace_id="ws_prospect")
    c.event("ev_prospect", "ws_prospect", "u_p", "2024-05-01T10:00:00")
    c.event("ev_stray", "ws_unknown", "u_s", "2024-05-01T10:00:00")
    c.cancellation(
        "resp_99", "2024-05-01T10:00:00Z", "nobody@nowhere.net", "", "unused", "", "canceled"
    )
    c.nps("nps_99", "2024-05-02T10:00:00", "nobody@nowhere.net", 3)
    return c


# Worked out by hand from `docs/metrics.md` (see the table in the module docstring).
# month -> (customers_start, new, reactivated, churned, customers_end,
#           mrr_start, new_mrr, reactivation_mrr, expansion, contraction, churned_mrr, mrr_end)
D = Decimal
EXPECTED_ALL = {
    "2024-01-01": (
        0,
        7,
        0,
        0,
        7,
        D("0.00"),
        D("1171.33"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("1171.33"),
    ),
    "2024-02-01": (
        7,
        2,
        0,
        0,
        9,
        D("1171.33"),
        D("308.00"),
        D("0.00"),
        D("100.00"),
        D("0.00"),
        D("0.00"),
        D("1579.33"),
    ),
    "2024-03-01": (
        9,
        0,
        0,
        2,
        7,
        D("1579.33"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("130.00"),
        D("1449.33"),
    ),
    "2024-04-01": (
        7,
        1,
        0,
        1,
        7,
        D("1449.33"),
        D("30.00"),
        D("0.00"),
        D("50.00"),
        D("7.00"),
        D("200.00"),
        D("1322.33"),
    ),
    "2024-05-01": (
        7,
        0,
        1,
        1,
        7,
        D("1322.33"),
        D("0.00"),
        D("80.00"),
        D("20.00"),
        D("100.00"),
        D("91.00"),
        D("1231.33"),
    ),
    "2024-06-01": (
        7,
        1,
        0,
        0,
        8,
        D("1231.33"),
        D("100.50"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("1331.83"),
    ),
}
# Exact MRR at the closes (the 43.333333333333 of cus_11 is why the rates use unrounded values).
MRR_CLOSE = {
    "2023-12-01": D("0"),
    "2024-01-01": D("1171.333333333333"),
    "2024-02-01": D("1579.333333333333"),
    "2024-03-01": D("1449.333333333333"),
    "2024-04-01": D("1322.333333333333"),
    "2024-05-01": D("1231.333333333333"),
    "2024-06-01": D("1331.833333333333"),
}

# customer_key -> (churned_at, cancel_requested_at, churn_type, mrr_lost, tenure_days,
#                  reason_category, archetype, is_influenceable, last_active_at)
EXPECTED_CHURNS = {
    "acc_09": (
        "2024-03-01 00:00:00",
        "2024-02-15 00:00:00",
        "voluntary",
        D("80.00"),
        60,
        "service",
        "we_messed_up",
        True,
        None,
    ),
    "acc_06": (
        "2024-03-10 08:00:00",
        "2024-03-10 08:00:00",
        "voluntary",
        D("50.00"),
        69,
        "product_quality",
        "we_messed_up",
        True,
        None,
    ),
    "acc_10": (
        "2024-03-20 00:00:00",
        "2024-03-20 00:00:00",
        "voluntary",
        D("120.00"),
        15,
        "competitor",
        "habit_change",
        True,
        None,
    ),
    "acc_07": (
        "2024-04-01 00:00:00",
        "2024-04-15 00:00:00",
        "involuntary",
        D("200.00"),
        60,
        "payment_failed",
        "external",
        False,
        "2024-03-28 09:00:00",
    ),
    "acc_03": (
        "2024-05-01 00:00:00",
        "2024-04-20 10:00:00",
        "voluntary",
        D("91.00"),
        121,
        "price",
        "other",
        True,
        "2024-04-25 12:00:00",
    ),
}
