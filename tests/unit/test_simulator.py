"""The simulated company: deterministic, on docs/sources.md, its mess present and counted.

Everything is read back from the files the simulator wrote, the way a
pipeline would read them, and compared with what `truth/` says was written.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnhouse.devkit.simulator import simulate
from churnhouse.devkit.simulator.truth import FREE_MAIL
from churnhouse.devkit.stripe_shapes import OLD_API_VERSION, to_old_shape

SMALL = {"customers": 40, "months": 8, "start": "2024-01", "seed": 3}
RICH = {"customers": 300, "months": 14, "start": "2024-01", "seed": 11}
SMALL_AS_OF = datetime(2024, 9, 1, tzinfo=UTC)
RICH_AS_OF = datetime(2025, 3, 1, tzinfo=UTC)


# --- reading a bundle back ---------------------------------------------------------------------


def simulated(tmp_path_factory, name: str, **params) -> Path:
    out = tmp_path_factory.mktemp(name)
    simulate(out=out, **params)
    return out


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file; the SQLite CRM by its SQL dump (same rows, same order)."""
    digests = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".sqlite":
            with sqlite3.connect(path) as db:
                data = "\n".join(db.iterdump()).encode()
        digests[str(path.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    return digests


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def billing_file(bundle: Path, resource: str) -> list[dict]:
    """The objects of one export file, as written."""
    return jsonl(bundle / "billing" / f"{resource}.jsonl")


def billing(bundle: Path, resource: str) -> list[dict]:
    """The objects of one export file in the shape before 2025-03-31, whatever shape they were
    written in, invoices with their whole line list (invoice_lines.jsonl joined back)."""
    prices = {p["id"]: p for p in billing_file(bundle, "prices")}
    objects = [to_old_shape(obj, prices) for obj in billing_file(bundle, resource)]
    if resource == "invoices":
        rest: dict[str, list[dict]] = {}
        for line in billing_file(bundle, "invoice_lines"):
            rest.setdefault(line["invoice"], []).append(to_old_shape(line, prices))
        for invoice in objects:
            invoice["lines"]["data"] += rest.pop(invoice["id"], [])
        assert not rest, "every line in invoice_lines.jsonl belongs to an invoice"
    return objects


def event_lines(bundle: Path) -> list[tuple[str, str]]:
    """(partition day, raw line) for every line of every partition file."""
    lines = []
    for path in sorted((bundle / "events").glob("dt=*/part-*.jsonl.gz")):
        day = path.parent.name.removeprefix("dt=")
        lines += [(day, line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
    return lines


def crm_rows(bundle: Path, table: str) -> list[dict]:
    with sqlite3.connect(bundle / "crm.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1")]


def survey_rows(bundle: Path, kind: str) -> list[tuple[str, dict]]:
    """(file name, row) in file-name order, as the contract says files are read."""
    rows = []
    for path in sorted((bundle / "surveys" / kind).glob("*.csv")):
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows += [(path.name, row) for row in csv.DictReader(handle)]
    return rows


def parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def key(event: dict, name: str):
    """A key in either Segment style: `key(event, "message_id")` reads messageId or message_id."""
    first, *rest = name.split("_")
    return event.get(first + "".join(part.title() for part in rest)) or event.get(name)


ACTIVITY = ("track", "page", "screen")


@dataclass
class ActivityCall:
    message_id: str
    type: str
    event: str | None
    user_id: str | None
    moment: datetime
    workspace: str | None  # by the rule of sources.md section 3


def assigned_activity(bundle: Path) -> list[ActivityCall]:
    """Every good activity call once, with its workspace: its own group id (top level or
    context), else its user's latest group call at or before it, else None."""
    calls, groups, seen = [], defaultdict(list), set()
    for _, line in event_lines(bundle):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        message, moment = key(event, "message_id"), parse_time(event.get("timestamp") or "x")
        if not message or not event.get("type") or moment is None or message in seen:
            continue
        seen.add(message)
        user = key(event, "user_id") or key(event, "anonymous_id")
        own = key(event, "group_id") or key(event.get("context") or {}, "group_id")
        if event["type"] == "group" and own and user:
            groups[user].append((moment, message, own))
        elif event["type"] in ACTIVITY:
            calls.append((ActivityCall(message, event["type"], event.get("event"),
                                       key(event, "user_id"), moment, own), user))  # fmt: skip
    for user_groups in groups.values():
        user_groups.sort()
    for call, user in calls:
        if call.workspace is None and user in groups:
            before = [g for g in groups[user] if g[0] <= call.moment]
            call.workspace = before[-1][2] if before else None
    return [call for call, _ in calls]


def truth_json(bundle: Path, name: str) -> dict:
    return json.loads((bundle / "truth" / name).read_text())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return simulated(tmp_path_factory, "small", **SMALL)


@pytest.fixture(scope="module")
def rich(tmp_path_factory) -> Path:
    return simulated(tmp_path_factory, "rich", **RICH)


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(bundle, tmp_path):
    simulate(out=tmp_path / "again", **SMALL)
    assert digest(tmp_path / "again") == digest(bundle)
    simulate(out=tmp_path / "other", **{**SMALL, "seed": 4})
    other = digest(tmp_path / "other")
    assert other["billing/invoices.jsonl"] != digest(bundle)["billing/invoices.jsonl"]
    assert other["truth/churn_monthly.csv"] != digest(bundle)["truth/churn_monthly.csv"]


def test_worker_processes_change_no_byte(tmp_path):
    params = {**SMALL, "customers": 45, "chunk_size": 15}
    simulate(out=tmp_path / "one", workers=1, **params)
    simulate(out=tmp_path / "two", workers=2, **params)
    one = digest(tmp_path / "one")
    assert one == digest(tmp_path / "two")
    assert {"events/dt=2024-08-30/part-0002.jsonl.gz", "surveys/nps/responses-0002.csv"} <= set(
        one
    ), "three chunks, each with its own part files"


def test_gzip_members_carry_no_time_or_name(bundle):
    header = next((bundle / "events").glob("dt=*/part-*.jsonl.gz")).read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08" and header[3] == 0, "no FNAME flag"
    assert header[4:8] == b"\x00\x00\x00\x00", "mtime 0"


# --- the contract, object by object ---------------------------------------------------------------

PRICE_KEYS = {"id", "product", "unit_amount", "currency", "recurring"}


def check_price(price: dict) -> None:
    assert PRICE_KEYS <= set(price)
    assert price["id"].startswith("price_") and price["product"].startswith("prod_")
    assert isinstance(price["unit_amount"], int) and price["unit_amount"] > 0
    assert price["currency"] in {"usd", "eur", "cny", "jpy"}
    recurring = price["recurring"]
    assert (recurring["interval"], recurring["interval_count"]) in {
        ("month", 1), ("month", 3), ("year", 1), ("week", 4), ("day", 30)
    }  # fmt: skip


def test_billing_customers_are_stripe_customers(rich):
    customers = billing(rich, "customers")
    for customer in customers:
        assert customer["id"].startswith("cus_") and customer["object"] == "customer"
        assert isinstance(customer["created"], int) and customer["currency"] in {
            "usd",
            "eur",
            "cny",
            "jpy",
        }
        assert "@" in customer["email"] and isinstance(customer["name"], str)
        assert set(customer["metadata"]) <= {"crm_account_id"}
        assert customer.get("deleted", True) is True
    assert len({c["id"] for c in customers}) == len(customers)
    assert any(c.get("deleted") for c in customers), "some churned customers were deleted"
    assert any(c["email"] != c["email"].strip() for c in customers), "emails with spaces"
    assert any(c["email"] != c["email"].lower() for c in customers), "emails in mixed case"


SUBSCRIPTION_KEYS = {
    "id", "object", "customer", "status", "created", "start_date", "trial_start", "trial_end",
    "cancel_at_period_end", "canceled_at", "ended_at", "current_period_start",
    "current_period_end", "cancellation_details", "items", "metadata",
}  # fmt: skip


def test_subscriptions_are_stripe_subscriptions(rich):
    customers = {c["id"] for c in billing(rich, "customers")} | unlisted_customers(rich)
    for sub in billing(rich, "subscriptions"):
        assert SUBSCRIPTION_KEYS <= set(sub) and sub["id"].startswith("sub_")
        assert sub["customer"] in customers
        assert sub["status"] in {"trialing", "active", "past_due", "canceled"}
        assert set(sub["cancellation_details"]) == {"reason", "feedback", "comment"}
        assert sub["cancellation_details"]["reason"] in {
            None, "cancellation_requested", "payment_failed"
        }  # fmt: skip
        assert sub["cancellation_details"]["feedback"] in {
            None, "too_expensive", "missing_features", "switched_service", "unused",
            "customer_service", "too_complex", "low_quality", "other",
        }  # fmt: skip
        assert sub["items"]["object"] == "list" and len(sub["items"]["data"]) == 1
        for item in sub["items"]["data"]:
            check_price(item["price"])
            assert isinstance(item["quantity"], int) and item["quantity"] >= 1
        assert (sub["status"] == "canceled") == (sub["ended_at"] is not None)
        if sub["ended_at"] is not None:
            assert sub["canceled_at"] is not None and sub["canceled_at"] <= sub["ended_at"]
        if sub["status"] == "trialing":  # the trial still runs at as_of
            assert sub["trial_start"] < RICH_AS_OF.timestamp() < sub["trial_end"]


INVOICE_KEYS = {
    "id", "object", "customer", "subscription", "status", "currency", "created",
    "period_start", "period_end", "amount_due", "amount_paid", "attempt_count",
    "billing_reason", "lines",
}  # fmt: skip


def test_invoices_are_stripe_invoices_with_lines(rich):
    subscriptions = {s["id"]: s for s in billing(rich, "subscriptions")}
    for invoice in billing(rich, "invoices"):
        assert INVOICE_KEYS <= set(invoice) and invoice["id"].startswith("in_")
        assert invoice["status"] in {"paid", "open", "void", "uncollectible"}
        assert invoice["billing_reason"] in {
            "subscription_create", "subscription_cycle", "subscription_update"
        }  # fmt: skip
        assert subscriptions[invoice["subscription"]]["customer"] == invoice["customer"]
        lines = invoice["lines"]["data"]
        assert invoice["lines"]["object"] == "list" and lines
        assert invoice["amount_due"] == sum(net(line) for line in lines)
        assert invoice["amount_paid"] in (0, invoice["amount_due"])
        assert (invoice["amount_paid"] == invoice["amount_due"]) == (
            invoice["status"] == "paid"
        ) or invoice["amount_due"] == 0
        for line in lines:
            assert line["id"].startswith("il_") and line["subscription"] == invoice["subscription"]
            assert line["period"]["start"] < line["period"]["end"]
            assert isinstance(line["amount"], int)
            assert isinstance(line["proration"], bool)
            assert line["amount"] >= 0 or line["proration"], "only proration credits are negative"
            check_price(line["price"])
            assert line["price"]["currency"] == invoice["currency"]


def test_charges_belong_to_invoices_and_fail_with_card_codes(rich):
    invoices = {i["id"]: i for i in billing(rich, "invoices")}
    charges = billing(rich, "charges")
    for charge in charges:
        assert charge["id"].startswith("ch_") and charge["object"] == "charge"
        invoice = invoices[charge["invoice"]]
        assert charge["customer"] == invoice["customer"]
        assert charge["amount"] == invoice["amount_due"] > 0
        assert charge["currency"] == invoice["currency"]
        assert charge["created"] >= invoice["created"]
        assert charge["status"] in {"succeeded", "failed"}
        assert (charge["failure_code"] is None) == (charge["status"] == "succeeded")
    codes = {c["failure_code"] for c in charges} - {None}
    assert {"expired_card", "card_declined"} <= codes <= {
        "expired_card", "card_declined", "insufficient_funds"
    }  # fmt: skip
    paid_by_card = {c["invoice"] for c in charges if c["status"] == "succeeded"}
    assert all(invoices[i]["status"] == "paid" for i in paid_by_card)


def net(line: dict) -> int:
    return line["amount"] - sum(d["amount"] for d in line["discount_amounts"])


def unlisted_customers(bundle: Path) -> set[str]:
    """Billing customers named by subscriptions or invoices but not in customers.jsonl."""
    named = {s["customer"] for s in billing_file(bundle, "subscriptions")}
    named |= {i["customer"] for i in billing_file(bundle, "invoices")}
    return named - {c["id"] for c in billing_file(bundle, "customers")}


# --- Stripe's two shapes, prices, cut-short line lists, discounts, deleted customers ----------------


@pytest.fixture(scope="module")
def old_shape(tmp_path_factory) -> Path:
    return simulated(tmp_path_factory, "old", **SMALL, stripe_api_version=OLD_API_VERSION)


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory) -> Path:
    return simulated(tmp_path_factory, "upgraded", **SMALL, stripe_upgrade_at=UPGRADE_DAY)


UPGRADE_DAY = "2024-05-01"


def is_new_invoice(invoice: dict) -> bool:
    lines = invoice["lines"]["data"]
    new = "parent" in invoice and "subscription" not in invoice
    assert all(("pricing" in line and "price" not in line) == new for line in lines)
    assert all(("parent" in line and "subscription" not in line) == new for line in lines)
    return new


def test_the_default_is_the_shape_of_2025_03_31(bundle):
    prices = {p["id"] for p in billing_file(bundle, "prices")}
    invoices = billing_file(bundle, "invoices")
    assert all(is_new_invoice(invoice) for invoice in invoices)
    for invoice in invoices:
        assert invoice["parent"]["subscription_details"]["subscription"].startswith("sub_")
        for line in invoice["lines"]["data"]:
            assert line["pricing"]["price_details"]["price"] in prices
            details = line["parent"]["subscription_item_details"]
            assert details["subscription_item"].startswith("si_")
            assert isinstance(details["proration"], bool)
    for sub in billing_file(bundle, "subscriptions"):
        assert "current_period_start" not in sub
        assert all("current_period_end" in item for item in sub["items"]["data"])


def test_an_older_api_version_writes_the_old_shape_and_the_same_truth(bundle, old_shape):
    invoices = billing_file(old_shape, "invoices")
    assert not any(is_new_invoice(invoice) for invoice in invoices)
    assert all("current_period_start" in sub for sub in billing_file(old_shape, "subscriptions"))
    assert billing(old_shape, "invoices") == billing(bundle, "invoices")
    assert billing(old_shape, "subscriptions") == billing(bundle, "subscriptions")
    old, new = digest(old_shape), digest(bundle)
    assert {k for k in old if old[k] != new[k]} == {
        "billing/invoices.jsonl", "billing/invoice_lines.jsonl", "billing/subscriptions.jsonl",
        "truth/summary.json",
    }  # fmt: skip


def test_an_upgrade_mid_history_splits_invoices_by_creation_day(bundle, upgraded):
    day = datetime.fromisoformat(UPGRADE_DAY).replace(tzinfo=UTC).timestamp()
    invoices = billing_file(upgraded, "invoices")
    shapes = Counter((invoice["created"] >= day, is_new_invoice(invoice)) for invoice in invoices)
    assert set(shapes) == {(False, False), (True, True)} and min(shapes.values()) > 20
    lines = billing_file(upgraded, "invoice_lines")
    created = {invoice["id"]: invoice["created"] for invoice in invoices}
    assert all(("pricing" in line) == (created[line["invoice"]] >= day) for line in lines)
    assert all("current_period_start" not in s for s in billing_file(upgraded, "subscriptions"))
    assert billing(upgraded, "invoices") == billing(bundle, "invoices")
    with pytest.raises(ValueError, match="new-shape API version"):
        simulate(out=upgraded.parent / "bad", **SMALL, stripe_api_version=OLD_API_VERSION,
                 stripe_upgrade_at=UPGRADE_DAY)  # fmt: skip


def test_prices_jsonl_holds_every_price_active_and_inactive(rich):
    prices = billing_file(rich, "prices")
    by_id = {p["id"]: p for p in prices}
    assert len(by_id) == len(prices)
    named = {i["price"]["id"] for s in billing(rich, "subscriptions") for i in s["items"]["data"]}
    named |= {line["price"]["id"] for i in billing(rich, "invoices") for line in i["lines"]["data"]}
    assert named <= set(by_id) and len(named) < len(by_id), "unused prices are listed too"
    assert {p["active"] for p in prices} == {True, False}
    assert {p["type"] for p in prices} == {"recurring", "one_time"}
    for price in prices:
        assert price["object"] == "price"
        assert (price["recurring"] is None) == (price["type"] == "one_time")
        if price["type"] == "recurring":
            check_price(price)


def test_some_invoices_have_cut_short_line_lists(rich):
    invoices = {i["id"]: i for i in billing_file(rich, "invoices")}
    rest = billing_file(rich, "invoice_lines")
    cut = [i for i in invoices.values() if i["lines"]["has_more"]]
    several = [i for i in billing(rich, "invoices") if len(i["lines"]["data"]) > 1]
    assert 0.3 * len(several) < len(cut) < 0.7 * len(several)
    assert {line["invoice"] for line in rest} == {i["id"] for i in cut}
    for invoice in invoices.values():
        assert invoice["lines"]["url"] == f"/v1/invoices/{invoice['id']}/lines"
        assert invoice["lines"]["has_more"] == (invoice in cut)
    for line in rest:
        assert line["object"] == "line_item" and line["id"].startswith("il_")
        embedded = {x["id"] for x in invoices[line["invoice"]]["lines"]["data"]}
        assert line["id"] not in embedded


def test_discounts_are_listed_on_lines_and_amounts_stay_before_them(rich):
    discounted = [
        (invoice, line)
        for invoice in billing(rich, "invoices")
        for line in invoice["lines"]["data"]
        if line["discount_amounts"]
    ]
    assert len(discounted) > 20
    for invoice, line in discounted:
        (discount,) = line["discount_amounts"]
        assert discount["discount"].startswith("di_")
        assert 0 < discount["amount"] < line["amount"] == line["price"]["unit_amount"] * line[
            "quantity"]  # fmt: skip
        assert invoice["amount_due"] == sum(net(x) for x in invoice["lines"]["data"])


def test_some_deleted_customers_are_left_out_of_the_list_and_tie_by_the_crm(rich):
    unlisted = unlisted_customers(rich)
    assert unlisted, "some deleted customers are missing from customers.jsonl"
    tied = {r["billing_customer_id"]: r["account_id"] for r in crm_rows(rich, "accounts")}
    identity = {
        row["billing_customer_id"]: (row["customer_key"], row["rule"])
        for row in csv.DictReader((rich / "truth" / "identity.csv").open())
    }
    for customer in unlisted:
        assert identity[customer] == (tied[customer], "2"), "the CRM's billing_customer_id ties it"
    assert truth_json(rich, "summary.json")["counts"]["billing_customers_unlisted"] == len(unlisted)


def test_events_follow_the_contract_and_are_partitioned_by_received_day(bundle):
    offsets, types, events = set(), Counter(), Counter()
    for day, line in event_lines(bundle):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        assert "received_at" not in event and "message_id" not in event, "wire style"
        received = parse_time(event["receivedAt"])
        assert event["receivedAt"].endswith("Z") and received < SMALL_AS_OF
        assert received.date().isoformat() == day, "the partition is the received day"
        if not all(event.get(k) for k in ("messageId", "type", "timestamp")):
            continue
        if parse_time(event["timestamp"]) is None:
            continue
        assert parse_time(event["timestamp"]) <= received
        offsets.add(event["timestamp"][19:])
        types[event["type"]] += 1
        if event["type"] in ("track", "page", "screen"):
            assert event["userId"].startswith("u_")
            group = event.get("groupId") or event.get("context", {}).get("groupId")
            assert group is None or group.startswith("ws_")
            assert isinstance(event["properties"], dict)
        if event["type"] == "track":
            events[event["event"]] += 1
        if event["type"] == "identify":
            assert "@" in event["traits"]["email"]
        if event["type"] == "group":
            assert event["groupId"].startswith("ws_") and event["userId"].startswith("u_")
    assert {"Z", "+08:00", "-05:00"} <= offsets
    assert types["track"] > 10_000 and types["identify"] > 0
    assert types["page"] > 0.1 * types["track"] and types["screen"] > 0
    assert types["group"] > 0 and types["alias"] > 0 and types["experiment_viewed"] > 0
    assert set(events) == {"login", "feature_used", "report_created", "invite_sent",
                           "project_created"}  # fmt: skip


CRM_COLUMNS = {
    "users": {"user_id", "full_name", "email", "team", "updated_at"},
    "accounts": {
        "account_id", "name", "domain", "industry", "employee_count", "region", "segment",
        "owner_id", "csm_id", "workspace_id", "billing_customer_id", "created_at",
        "updated_at", "is_deleted",
    },
    "contacts": {"contact_id", "account_id", "email", "full_name", "title", "is_primary",
                 "created_at", "updated_at"},
    "activities": {"activity_id", "account_id", "user_id", "type", "occurred_at", "subject",
                   "body", "updated_at"},
}  # fmt: skip


def test_crm_tables_have_the_contract_columns_and_values(rich):
    engine = sa.create_engine(f"sqlite:///{rich / 'crm.sqlite'}")
    inspector = sa.inspect(engine)
    for table, columns in CRM_COLUMNS.items():
        assert {c["name"] for c in inspector.get_columns(table)} == columns, table
    engine.dispose()
    users = {u["user_id"]: u for u in crm_rows(rich, "users")}
    assert {u["team"] for u in users.values()} == {"sales", "customer_success", "support"}
    accounts = crm_rows(rich, "accounts")
    for account in accounts:
        assert account["region"] in {"apac", "emea", "na", "latam"}
        assert account["segment"] in {"smb", "mid_market", "enterprise"}
        assert account["owner_id"] in users and account["csm_id"] in {None, *users}
        assert account["created_at"] <= account["updated_at"]
        assert account["is_deleted"] in (0, 1)
    domains = [a["domain"].lower() for a in accounts if a["domain"]]
    assert len(domains) == len(set(domains)), "a domain belongs to one account"
    assert any(a["domain"] is None for a in accounts)
    assert any(a["domain"] and a["domain"] != a["domain"].lower() for a in accounts)
    assert any(a["is_deleted"] for a in accounts), "some churned accounts are soft-deleted"
    account_ids = {a["account_id"] for a in accounts}
    contacts = crm_rows(rich, "contacts")
    assert all(c["account_id"] in account_ids for c in contacts)
    assert any(c["email"] != c["email"].strip().lower() for c in contacts), "messy emails"
    activities = crm_rows(rich, "activities")
    assert {a["type"] for a in activities} == {"call", "email", "meeting", "qbr", "note",
                                               "complaint"}  # fmt: skip
    assert all(a["account_id"] in account_ids and a["user_id"] in users for a in activities)


def test_survey_exports_follow_the_contract(rich):
    cancellations = survey_rows(rich, "cancellation")
    assert all(p.read_bytes().startswith("\ufeff".encode()) for p in
               (rich / "surveys" / "cancellation").glob("*.csv"))  # fmt: skip
    subscriptions = {s["id"] for s in billing(rich, "subscriptions")}
    valid = [row for _, row in cancellations if parse_time(row["submitted_at"])]
    for row in valid:
        assert list(row) == ["response_id", "submitted_at", "email", "subscription_id",
                             "primary_reason", "reason_text", "offer_presented",
                             "offer_accepted", "outcome"]  # fmt: skip
        assert row["subscription_id"] in subscriptions | {""}
        assert row["email"] or row["subscription_id"], "an answer ties by one or the other"
        assert row["primary_reason"] in {
            "", "too_expensive", "missing_features", "switched_service", "unused",
            "customer_service", "too_complex", "low_quality", "no_longer_needed",
            "business_closed", "budget_cut", "other",
        }  # fmt: skip
        assert row["offer_presented"] in {"none", "discount", "pause", "downgrade", "training"}
        assert row["offer_accepted"] in {"true", "false"}
        assert row["outcome"] in {"canceled", "saved"}
        assert row["outcome"] == "canceled" or row["offer_accepted"] == "true"
    assert any("\n" in row["reason_text"] for row in valid), "a multi-line answer"
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in row["reason_text"]) for row in valid)
    assert {row["outcome"] for row in valid} == {"canceled", "saved"}
    offsets = {row["submitted_at"][19:] for row in valid}
    assert {"Z", "+08:00", "-05:00"} <= offsets
    nps = [row for _, row in survey_rows(rich, "nps")]
    assert all(list(row) == ["response_id", "submitted_at", "email", "score", "comment"]
               for row in nps)  # fmt: skip
    scores = Counter(row["score"] for row in nps if parse_time(row["submitted_at"]))
    assert set(scores) - {"11"} <= {str(n) for n in range(11)} and len(scores) >= 9


def test_fx_rates_cover_every_month_in_usd_eur_cny_and_jpy(bundle):
    rows = list(csv.DictReader((bundle / "fx_rates.csv").open()))
    months = [f"2024-{m:02d}" for m in range(1, 10)]
    assert sorted({(r["currency"], r["month"]) for r in rows}) == sorted(
        (c, m) for c in ("cny", "eur", "jpy", "usd") for m in months
    )
    assert all(r["rate_to_usd"] == "1" for r in rows if r["currency"] == "usd")
    assert all(0.1 < float(r["rate_to_usd"]) < 0.2 for r in rows if r["currency"] == "cny")
    assert all(0.005 < float(r["rate_to_usd"]) < 0.009 for r in rows if r["currency"] == "jpy")


def test_nothing_is_created_or_received_after_as_of(bundle):
    as_of = SMALL_AS_OF.timestamp()
    for resource in ("customers", "subscriptions", "invoices", "charges"):
        assert all(obj["created"] <= as_of for obj in billing(bundle, resource)), resource
    for sub in billing(bundle, "subscriptions"):
        assert all((sub[k] or 0) <= as_of for k in ("canceled_at", "ended_at", "start_date"))
    for kind in ("cancellation", "nps"):
        for _, row in survey_rows(bundle, kind):
            moment = parse_time(row["submitted_at"])
            assert moment is None or moment < SMALL_AS_OF
    for table, column in (("accounts", "updated_at"), ("activities", "occurred_at")):
        assert max(r[column] for r in crm_rows(bundle, table)) < "2024-09-01"


# --- the mess, counted ------------------------------------------------------------------------------


def count_event_mess(bundle: Path) -> Counter:
    counts: Counter = Counter()
    first_copy: dict[str, dict] = {}
    for _, line in event_lines(bundle):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            counts["events_invalid_json"] += 1
            continue
        if not all(key(event, k) for k in ("message_id", "type", "timestamp")):
            counts["events_missing_key"] += 1
        elif parse_time(event["timestamp"]) is None:
            counts["events_bad_timestamp"] += 1
        elif key(event, "message_id") in first_copy:
            counts["duplicate_event_deliveries"] += 1
            received = ("received_at", "receivedAt")
            same = {k: v for k, v in event.items() if k not in received}
            original = first_copy[key(event, "message_id")]
            assert same == {k: v for k, v in original.items() if k not in received}
        else:
            first_copy[key(event, "message_id")] = event
            known = ("track", "identify", "group", "page", "screen", "alias")
            counts["events_unknown_type"] += event["type"] not in known
    for event in first_copy.values():
        delay = parse_time(key(event, "received_at")) - parse_time(event["timestamp"])
        counts["late_events"] += delay.days >= 1
    counts["events_activity_without_workspace"] = sum(
        call.workspace is None for call in assigned_activity(bundle)
    )
    return counts


def count_survey_mess(bundle: Path) -> Counter:
    counts: Counter = Counter()
    seen: dict[str, dict] = {}
    for _, row in survey_rows(bundle, "cancellation"):
        if parse_time(row["submitted_at"]) is None:
            counts["survey_bad_date"] += row["response_id"] not in seen
        elif row["response_id"] in seen:
            assert seen[row["response_id"]] == row
            counts["redelivered_survey_rows"] += 1
        seen.setdefault(row["response_id"], row)
    for _, row in survey_rows(bundle, "nps"):
        if parse_time(row["submitted_at"]) is None:
            counts["nps_bad_date"] += 1
        elif not row["score"].isdigit() or int(row["score"]) > 10:
            counts["nps_score_out_of_range"] += 1
    return counts


def count_billing_mess(bundle: Path) -> Counter:
    counts: Counter = Counter()
    for customer in billing(bundle, "customers"):
        counts["billing_customers_missing_crm_id"] += "crm_account_id" not in customer["metadata"]
        domain = customer["email"].strip().lower().rsplit("@", 1)[-1]
        counts["free_mail_customers"] += domain in FREE_MAIL
    return counts


@pytest.mark.parametrize("which", ["bundle", "rich"])
def test_the_mess_in_the_files_is_what_the_truth_counts(which, request):
    folder = request.getfixturevalue(which)
    injected = truth_json(folder, "bad_input.json")
    found = count_event_mess(folder) + count_survey_mess(folder) + count_billing_mess(folder)
    for kind in found.keys() | {k for k in injected if k in found or k.startswith("events_")}:
        assert found[kind] == injected[kind], kind
    assert all(found[kind] > 0 for kind in injected if kind not in ("messy_emails",
               "unmatched_billing_customers")), "every kind of mess occurs"  # fmt: skip


def test_every_25th_company_sends_one_bad_event_line_of_each_kind_and_one_unknown_type(rich):
    injected = truth_json(rich, "bad_input.json")
    for kind in ("events_invalid_json", "events_missing_key", "events_bad_timestamp",
                 "events_unknown_type"):  # fmt: skip
        assert 0.8 * 300 / 25 <= injected[kind] <= 300 / 25, kind
    assert injected["survey_bad_date"] == injected["nps_bad_date"] == 300 // 40 + 1


def test_the_warehouse_style_is_the_same_calls_in_snake_case(tmp_path_factory, bundle):
    warehouse = simulated(tmp_path_factory, "small_warehouse", **SMALL, events_style="warehouse")
    wire_digest, warehouse_digest = digest(bundle), digest(warehouse)
    truth = [name for name in wire_digest if name.startswith("truth/") and "summary" not in name]
    assert [wire_digest[n] for n in truth] == [warehouse_digest[n] for n in truth]

    def calls(folder: Path) -> list[tuple]:
        found = []
        for day, line in event_lines(folder):
            if line.endswith("}"):
                event = json.loads(line)
                found.append((day, key(event, "message_id"), event.get("type"), event.get("timestamp"),
                              key(event, "user_id"), key(event, "group_id")))  # fmt: skip
        return found

    assert calls(warehouse) == calls(bundle)
    camel = {"messageId", "userId", "anonymousId", "groupId", "receivedAt", "sentAt"}
    assert not any(camel & json.loads(line).keys() for _, line in event_lines(warehouse)
                   if line.endswith("}"))  # fmt: skip
    activity = assigned_activity(warehouse)
    assert [(c.message_id, c.workspace) for c in activity] == [
        (c.message_id, c.workspace) for c in assigned_activity(bundle)
    ]
    assert sum(c.workspace is None for c in activity) > 0


def test_a_survey_file_is_delivered_again_under_a_later_name(bundle):
    folder = bundle / "surveys" / "cancellation"
    names = sorted(p.name for p in folder.glob("*.csv"))
    assert names == ["responses-0000.csv", "responses-0000.redelivered.csv"]
    assert (folder / names[0]).read_bytes() == (folder / names[1]).read_bytes()


def test_summary_counts_what_was_written(bundle):
    summary = truth_json(bundle, "summary.json")
    counts = summary["counts"]
    assert summary["as_of"] == "2024-09-01T00:00:00Z" and summary["seed"] == 3
    assert summary["parameters"] == {"customers": 40, "months": 8, "start": "2024-01",
                                     "chunk_size": 500, "stripe_api_version": "2025-03-31.basil",
                                     "stripe_upgrade_at": None, "events_style": "wire"}  # fmt: skip
    assert counts["event_lines"] == len(event_lines(bundle))
    for resource in ("customers", "subscriptions", "invoices", "charges", "prices"):
        assert counts[f"billing_{resource}"] == len(billing_file(bundle, resource))
    assert counts["billing_invoice_lines_cut_short"] == len(billing_file(bundle, "invoice_lines"))
    assert counts["crm_accounts"] == len(crm_rows(bundle, "accounts"))
    assert counts["crm_activities"] == len(crm_rows(bundle, "activities"))
    churns = list(csv.DictReader((bundle / "truth" / "churn_events.csv").open()))
    assert counts["churns"] == len(churns)


# --- the CRM in a real server ---------------------------------------------------------------------


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_the_crm_can_live_in_a_real_server(server, request, bundle, tmp_path):
    url = request.getfixturevalue(f"{server}_url")
    summary = simulate(out=tmp_path / "bundle", crm_url=url, **SMALL)
    assert not (tmp_path / "bundle" / "crm.sqlite").exists()
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        for table in CRM_COLUMNS:
            rows = connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1")).mappings()
            served = [_comparable(dict(row)) for row in rows]
            assert served == [_comparable(row) for row in crm_rows(bundle, table)], table
    engine.dispose()
    assert summary.counts["crm_accounts"] == len(served and crm_rows(bundle, "accounts"))


def _comparable(row: dict) -> dict:
    """Values as text the same way on every backend (SQLite keeps timestamps as text)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = value.isoformat(sep=" ")
        elif isinstance(value, str) and len(value) == 26 and value[10] == " ":
            value = value.removesuffix(".000000")
        elif isinstance(value, bool):
            value = int(value)
        out[key] = value
    return out


# --- the company's behaviour, visible in the sources ---------------------------------------------


def test_the_company_shows_trials_plans_currencies_and_changes(rich):
    subscriptions = {s["id"]: s for s in billing(rich, "subscriptions")}
    invoices = billing(rich, "invoices")
    lines = [(i, line) for i in invoices for line in i["lines"]["data"]]
    free = [line for _, line in lines if line["amount"] == 0 and not line["proration"]]
    trials = {
        line["subscription"]
        for line in free
        if line["period"]["start"] == subscriptions[line["subscription"]]["trial_start"]
    }
    assert trials and len(trials) < len(free), "zero-amount lines: trials, and paused months"
    lapsed = {s for s in trials if subscriptions[s]["ended_at"] == subscriptions[s]["trial_end"]}
    assert lapsed and trials - lapsed, "trials lapse and convert"
    intervals = {(line["price"]["recurring"]["interval"], line["price"]["recurring"]["interval_count"])
                 for _, line in lines}  # fmt: skip
    assert intervals == {("month", 1), ("month", 3), ("year", 1), ("week", 4), ("day", 30)}
    assert {i["currency"] for i in invoices} == {"usd", "eur", "cny", "jpy"}
    yen = [
        line["price"]["unit_amount"]
        for i, line in lines
        if i["currency"] == "jpy" and line["price"]["recurring"]["interval"] == "month"
        and line["price"]["recurring"]["interval_count"] == 1
    ]  # fmt: skip
    # a seat costs 1,300-14,500 yen a month: whole yen (zero-decimal), never hundredths of one
    assert yen and all(1_000 <= amount <= 15_000 for amount in yen), sorted(set(yen))
    assert any(line["proration"] and i["billing_reason"] == "subscription_update"
               for i, line in lines), "seats added mid-period"  # fmt: skip
    by_sub: dict[str, list] = {}
    for invoice, line in lines:
        if invoice["status"] == "paid" and not line["proration"] and line["amount"]:
            by_sub.setdefault(line["subscription"], []).append(line)
    changes = Counter()
    for sub_lines in by_sub.values():
        for before, after in zip(sub_lines, sub_lines[1:], strict=False):
            changes["upgrade"] += after["price"]["unit_amount"] > before["price"]["unit_amount"]
            changes["downgrade"] += after["price"]["unit_amount"] < before["price"]["unit_amount"]
            changes["seats"] += after["quantity"] != before["quantity"]
    assert changes["upgrade"] and changes["downgrade"] and changes["seats"]


def test_re_issued_invoices_void_the_old_one(rich):
    periods = Counter()
    statuses: dict[tuple, set] = {}
    for invoice in billing(rich, "invoices"):
        line = invoice["lines"]["data"][0]
        if line["proration"]:
            continue
        key = (line["subscription"], line["period"]["start"])
        periods[key] += 1
        statuses.setdefault(key, set()).add(invoice["status"])
    twice = [key for key, n in periods.items() if n > 1]
    assert twice and all(n <= 2 for n in periods.values())
    assert all("void" in statuses[key] and len(statuses[key]) == 2 for key in twice)


def test_cancellations_at_period_end_immediately_and_for_non_payment(rich):
    subs = billing(rich, "subscriptions")
    invoices = billing(rich, "invoices")
    ended = [s for s in subs if s["ended_at"] and not s["trial_end"]]
    at_period_end = [s for s in ended if s["cancel_at_period_end"]]
    assert any(s["canceled_at"] < s["ended_at"] for s in at_period_end)
    assert any(not s["cancel_at_period_end"] and s["canceled_at"] == s["ended_at"]
               and s["cancellation_details"]["reason"] == "cancellation_requested"
               for s in ended)  # fmt: skip
    scheduled = [s for s in subs if s["cancel_at_period_end"] and s["ended_at"] is None]
    assert scheduled and all(s["status"] == "active" for s in scheduled)
    failed = [s for s in ended if s["cancellation_details"]["reason"] == "payment_failed"]
    uncollectible = {i["subscription"] for i in invoices if i["status"] == "uncollectible"}
    assert failed and {s["id"] for s in failed} <= uncollectible
    retried = [i for i in invoices if i["attempt_count"] > 1]
    assert any(i["status"] == "paid" for i in retried), "dunning that recovers"
    assert any(i["status"] == "uncollectible" and i["attempt_count"] == 4 for i in retried)


def test_two_subscriptions_one_cancelled_and_comebacks_on_the_same_customer(rich):
    subs = billing(rich, "subscriptions")
    by_customer: dict[str, list] = {}
    for sub in subs:
        by_customer.setdefault(sub["customer"], []).append(sub)
    contraction = [
        group for group in by_customer.values()
        if any(s["ended_at"] and s["items"]["data"][0]["price"]["product"] == "prod_insights"
               for s in group)
        and any(s["ended_at"] is None for s in group)
    ]  # fmt: skip
    assert contraction, "an add-on cancelled while the main plan runs on"
    comebacks = [
        group for group in by_customer.values()
        if any(b["created"] > a["ended_at"] + 30 * 86400 for a in group if a["ended_at"]
               for b in group)
    ]  # fmt: skip
    assert comebacks, "a new subscription on the same billing customer months later"


def test_saves_fall_on_both_sides_of_the_30_day_deflection_edge(rich):
    """Some saved customers leave an hour before, some an hour after submitted_at + 30 days."""
    saves = [r for r in truth_csv(rich, "cancel_saves") if r["is_save"] == "true"]
    churns: dict[str, list[datetime]] = {}
    for row in truth_csv(rich, "churn_events"):
        churns.setdefault(row["customer_key"], []).append(datetime.fromisoformat(row["churned_at"]))
    sides = Counter()
    for save in saves:
        checked = datetime.fromisoformat(save["deflection_checked_at"])
        for churned_at in churns.get(save["customer_key"], []):
            seconds = (churned_at - checked).total_seconds()
            if 0 < seconds <= 2 * 3600:
                sides["after"] += 1
                assert save["is_deflection"] == "true", save
            elif -2 * 3600 <= seconds <= 0:
                sides["before"] += 1
                assert save["is_deflection"] == "false", save
    assert sides["before"] >= 1 and sides["after"] >= 1, sides


def test_nps_scores_cover_0_to_10(rich):
    scores = Counter(int(row["score"]) for _, row in survey_rows(rich, "nps")
                     if row["score"].isdigit() and int(row["score"]) <= 10)  # fmt: skip
    assert set(scores) == set(range(11)), sorted(scores.items())
    totals = [r for r in truth_csv(rich, "nps_monthly") if r["segment"] == "all"]
    assert sum(int(r["passives"]) for r in totals) > 0
    assert sum(int(r["respondents"]) for r in totals) == sum(
        int(r["promoters"]) + int(r["passives"]) + int(r["detractors"]) for r in totals
    )


def truth_csv(bundle: Path, table: str) -> list[dict]:
    with open(bundle / "truth" / f"{table}.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_saves_and_a_seasonal_dip(rich):
    saved = [row for _, row in survey_rows(rich, "cancellation") if row["outcome"] == "saved"]
    assert saved and all(row["offer_presented"] != "none" for row in saved)
    per_day: Counter = Counter()
    for day, line in event_lines(rich):
        if '"type": "track"' in line or '"type": "page"' in line:
            per_day[day] += 1
    subs = billing(rich, "subscriptions")

    def per_paying_subscription(month: str) -> float:
        start = datetime.fromisoformat(f"{month}-15T00:00:00+00:00").timestamp()
        paying = sum(s["created"] < start < (s["ended_at"] or 2e9) for s in subs)
        return sum(per_day[f"{month}-{d:02d}"] for d in range(8, 23)) / paying

    assert per_paying_subscription("2024-08") < 0.8 * per_paying_subscription("2024-07")
