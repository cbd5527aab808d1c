"""Small hand-written source files for unit tests (the simulator covers realistic volume)."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path


def track(message_id: str, timestamp: str, group_id: str | None = "ws_1", **extra) -> str:
    event = {
        "message_id": message_id,
        "type": "track",
        "event": extra.pop("event", "login"),
        "user_id": extra.pop("user_id", "u_1"),
        "timestamp": timestamp,
        "received_at": extra.pop("received_at", "2024-09-02T00:00:00Z"),
        "properties": extra.pop("properties", {}),
        **extra,
    }
    if group_id is not None:
        event["group_id"] = group_id
    return json.dumps(event, ensure_ascii=False)


def write_partition(root: Path, day: str, lines: list[str], part: int = 0) -> Path:
    folder = root / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{part:04d}.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def table_fingerprint(tx, table: str, ignore=("_loaded_at", "_run_id")) -> tuple[int, int]:
    """Row count and an order-independent checksum of a table, ignoring load metadata."""
    import hashlib

    names = [
        row[0]
        for row in tx.fetchall(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema || '.' || table_name = ? ORDER BY ordinal_position",
            [table],
        )
    ]
    kept = [name for name in names if name not in ignore]
    rows = tx.fetchall(f"SELECT {', '.join(kept)} FROM {table}")
    digest = 0
    for row in rows:
        digest ^= int.from_bytes(
            hashlib.sha256(repr(tuple(map(str, row))).encode()).digest()[:8], "big"
        )
    return len(rows), digest


# Billing export folder built from the shape examples in docs/examples (billing API and extractor tests).
KEY = "sk_test_churnhouse_4242"
WRONG_KEY = "sk_test_not_the_key_9999"
T0 = 1_717_200_000  # 2024-06-01 00:00:00 UTC
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
SUBSCRIPTION_STATUSES = [
    "active",
    "canceled",
    "trialing",
    "past_due",
    "canceled",
    "active",
    "unpaid",
    "canceled",
    "paused",
    "incomplete_expired",
]
# Bad lines the writer puts into invoices.jsonl: line number -> reason the reader gives.
BAD_INVOICE_LINES = {
    101: "invalid JSON at column 21: Unterminated string starting at",
    252: "not a JSON object (a list)",
    253: "no 'id' (a non-empty string is required)",
}


def published_checksums(warehouse) -> dict[str, str]:
    """sha256 of each published table's rows (schema analytics), in a stable order."""
    import hashlib

    _, tables = warehouse.read_published(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'"
    )
    sums = {}
    for (table,) in tables:
        _, rows = warehouse.read_published(f"SELECT * FROM analytics.{table}")
        text = "\n".join(sorted(repr(row) for row in rows))
        sums[table] = hashlib.sha256(text.encode()).hexdigest()
    return sums


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def _variant(template: dict, **fields) -> dict:
    obj = copy.deepcopy(template)
    obj.update(fields)
    return obj


def write_billing_export(folder: Path) -> dict[str, list[dict]]:
    """an export folder from the shape examples in docs/examples; returns the objects it holds, per resource.

    invoices.jsonl: 250 invoices (pairs share a `created`, so order falls back to id),
    the three BAD_INVOICE_LINES, a blank line, and a last line that re-sends
    in_0007 as void (the later copy wins).
    """
    customer, invoice, charge, price = (
        _example(f"billing-{kind}.json") for kind in ("customer", "invoice", "charge", "price")
    )
    subscription = _example("billing-subscriptions-page.json")["data"][0]
    objects = {
        "customers": [
            _variant(customer, id=f"cus_{i:03d}", created=T0 + i * 86_400) for i in range(15)
        ],
        "subscriptions": [
            _variant(subscription, id=f"sub_{i:03d}", status=status, created=T0 + i * 86_400)
            for i, status in enumerate(SUBSCRIPTION_STATUSES)
        ],
        "invoices": [
            _variant(invoice, id=f"in_{i:04d}", created=T0 + (i // 2) * 3_600) for i in range(250)
        ],
        "charges": [_variant(charge, id=f"ch_{i:03d}", created=T0 + i * 600) for i in range(20)],
        "prices": [price, _variant(price, id="price_old_launch", active=False, created=T0)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for resource in ("customers", "subscriptions", "charges", "prices"):
        lines = [json.dumps(obj, ensure_ascii=False) for obj in objects[resource]]
        (folder / f"{resource}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    invoices = [json.dumps(obj, ensure_ascii=False) for obj in objects["invoices"]]
    resent = _variant(objects["invoices"][7], status="void", amount_paid=0)
    lines = [
        *invoices[:100],
        '{"id": "in_broken", "amou',
        *invoices[100:],
        "[1, 2]",
        '{"object": "invoice", "created": 1717200000}',
        "",
        json.dumps(resent, ensure_ascii=False),
    ]
    (folder / "invoices.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    objects["invoices"][7] = resent
    return objects


def crm_schema(metadata):
    """The CRM tables of docs/sources.md (plus one column beyond it), on any SQLAlchemy engine."""
    import sqlalchemy as sa

    ts = sa.DateTime
    return {
        "users": sa.Table(
            "users",
            metadata,
            sa.Column("user_id", sa.String(40), primary_key=True),
            sa.Column("full_name", sa.Text),
            sa.Column("email", sa.Text),
            sa.Column("team", sa.Text),
            sa.Column("updated_at", ts),
        ),
        "accounts": sa.Table(
            "accounts",
            metadata,
            sa.Column("account_id", sa.String(40), primary_key=True),
            sa.Column("name", sa.Text),
            sa.Column("domain", sa.Text),
            sa.Column("industry", sa.Text),
            sa.Column("employee_count", sa.Integer),
            sa.Column("region", sa.Text),
            sa.Column("segment", sa.Text),
            sa.Column("owner_id", sa.Text),
            sa.Column("csm_id", sa.Text),
            sa.Column("workspace_id", sa.Text),
            sa.Column("billing_customer_id", sa.Text),
            sa.Column("created_at", ts),
            sa.Column("updated_at", ts),
            sa.Column("is_deleted", sa.Boolean),
            sa.Column("favourite_colour", sa.Text),  # beyond the contract: must land untouched
        ),
        "contacts": sa.Table(
            "contacts",
            metadata,
            sa.Column("contact_id", sa.String(40), primary_key=True),
            sa.Column("account_id", sa.Text),
            sa.Column("email", sa.Text),
            sa.Column("full_name", sa.Text),
            sa.Column("title", sa.Text),
            sa.Column("is_primary", sa.Boolean),
            sa.Column("created_at", ts),
            sa.Column("updated_at", ts),
        ),
        "activities": sa.Table(
            "activities",
            metadata,
            sa.Column("activity_id", sa.String(40), primary_key=True),
            sa.Column("account_id", sa.Text),
            sa.Column("user_id", sa.Text),
            sa.Column("type", sa.Text),
            sa.Column("occurred_at", ts),
            sa.Column("subject", sa.Text),
            sa.Column("body", sa.Text),
            sa.Column("updated_at", ts),
        ),
    }


def write_mini_bundle(root: Path) -> Path:
    """A small but complete source bundle (all four sources + FX), independent of the simulator."""
    from datetime import datetime

    import sqlalchemy as sa

    root.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{root / 'crm.sqlite'}")
    tables = crm_schema(metadata := sa.MetaData())
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            tables["users"].insert(),
            [
                {
                    "user_id": "usr_1",
                    "full_name": "Ana Lima",
                    "email": "ana@vendor.io",
                    "team": "sales",
                    "updated_at": datetime(2024, 1, 1),
                }
            ],
        )
        connection.execute(
            tables["accounts"].insert(),
            [
                {
                    "account_id": f"acc_{i:03d}",
                    "name": f"Company {i}",
                    "domain": f"c{i}.example",
                    "industry": None,
                    "employee_count": 10 * i,
                    "region": "emea",
                    "segment": "smb",
                    "owner_id": "usr_1",
                    "csm_id": None,
                    "workspace_id": f"ws_{i}",
                    "billing_customer_id": f"cus_{i:03d}",
                    "created_at": datetime(2024, 1, 1),
                    "updated_at": datetime(2024, 6, 1 + i),
                    "is_deleted": False,
                    "favourite_colour": None,
                }
                for i in range(1, 11)
            ],
        )
        connection.execute(
            tables["contacts"].insert(),
            [
                {
                    "contact_id": "con_1",
                    "account_id": "acc_001",
                    "email": " Li.Wei@c1.example ",
                    "full_name": "Li Wei",
                    "title": None,
                    "is_primary": True,
                    "created_at": datetime(2024, 1, 1),
                    "updated_at": datetime(2024, 1, 1),
                }
            ],
        )
        connection.execute(
            tables["activities"].insert(),
            [
                {
                    "activity_id": "act_1",
                    "account_id": "acc_001",
                    "user_id": "usr_1",
                    "type": "complaint",
                    "occurred_at": datetime(2024, 9, 20),
                    "subject": "outage",
                    "body": "客服回复太慢",
                    "updated_at": datetime(2024, 9, 20),
                }
            ],
        )
    engine.dispose()
    write_billing_export(root / "billing")
    events = root / "events"
    for day in range(1, 31):
        lines = [
            track(f"e{day}-{i}", f"2024-09-{day:02d}T10:00:00+08:00", group_id=f"ws_{i % 10 + 1}")
            for i in range(40)
        ]
        if day == 29:
            lines += ["{not json", track(f"e{day}-0", f"2024-09-{day:02d}T10:00:00+08:00")]
        write_partition(events, f"2024-09-{day:02d}", lines)
    (root / "surveys" / "cancellation").mkdir(parents=True, exist_ok=True)
    (root / "surveys" / "nps").mkdir(parents=True, exist_ok=True)
    (root / "surveys" / "cancellation" / "2024-09.csv").write_bytes(
        (EXAMPLES / "cancellation-survey.csv").read_bytes()
    )
    (root / "surveys" / "nps" / "2024-09.csv").write_text(
        (EXAMPLES / "nps.csv").read_text(encoding="utf-8")
        + "nps_0003,2024-09-02T10:00:00Z,a@c2.example,11,\n",
        encoding="utf-8",
    )
    months = [f"2024-{m:02d}" for m in range(1, 13)]
    (root / "fx_rates.csv").write_text(
        "currency,month,rate_to_usd\n"
        + "".join(f"eur,{m},1.0850000000\nusd,{m},1\n" for m in months),
        encoding="utf-8",
    )
    return root
