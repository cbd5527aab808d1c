"""The export folder read in bulk: DuckDB parses the lines and shreds the objects into
the raw columns in SQL, on every core; no object passes through Python.

It follows the rules of the object-by-object reader in `extract.py` (which reads the
API): both API shapes,
ids or expanded objects, the latest copy of an id, prices from `/v1/prices` and from
subscription items, cut-short line lists completed from `invoice_lines.jsonl`, a
missing field the models need failing the load by name. The `raw` column holds each
object's line as written (an embedded invoice line: its JSON as DuckDB writes it).

Bad lines are found in SQL and worded by `export.parse_line`'s `json` reading, so the
quarantine says what the object reader says. DuckDB's JSON reader differs from `json`
in ways no real export shows: a trailing comma is read; of a repeated key the first
wins (json: the last); an escaped lone surrogate is a bad line (`REFUSED_BY_DUCKDB`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from churnhouse.contracts import BadRecord, Batch, Extracted, RawTable, RunWindow, utc_now
from churnhouse.errors import ContractError
from churnhouse.sources.billing.export import (
    INVOICE_LINES_FILE,
    _parse_line_with_json,
    export_file,
)

_BOM = b"\xef\xbb\xbf"

# JSON helpers. A JSON null is turned into SQL NULL (`jv`) before a value is judged.
_MACROS = r"""
CREATE OR REPLACE TEMP MACRO jv(j) AS CASE WHEN json_type(j) = 'NULL' THEN NULL ELSE j END;
CREATE OR REPLACE TEMP MACRO oid(j) AS
    CASE WHEN json_type(j) = 'OBJECT' THEN json_extract_string(j, '$.id')
         ELSE json_extract_string(jv(j), '$') END;
CREATE OR REPLACE TEMP MACRO truthy(j) AS coalesce(CASE json_type(j)
    WHEN 'BOOLEAN' THEN json_extract_string(j, '$') = 'true'  -- no cast: DuckDB may run
    WHEN 'VARCHAR' THEN json_extract_string(j, '$') <> ''
    WHEN 'ARRAY' THEN json_array_length(j) > 0
    WHEN 'OBJECT' THEN json_keys(j) <> []
    WHEN 'NULL' THEN false
    ELSE TRY_CAST(json_extract_string(j, '$') AS DOUBLE) <> 0 END, false);  -- every branch
CREATE OR REPLACE TEMP MACRO unixtime(n) AS make_timestamp(n * 1000000);
CREATE OR REPLACE TEMP MACRO epoch_at(j) AS
    unixtime(CAST(trunc(CAST(json_extract_string(jv(j), '$') AS DOUBLE)) AS BIGINT));
CREATE OR REPLACE TEMP MACRO int_of(j) AS CAST(json_extract_string(jv(j), '$') AS BIGINT);
CREATE OR REPLACE TEMP MACRO text_of(j) AS json_extract_string(jv(j), '$');
-- The set values at `path` in a subscription's items, as Unix seconds.
CREATE OR REPLACE TEMP MACRO item_times(items, path) AS list_transform(
    list_filter(json_extract(items, path), lambda value: truthy(value)),
    lambda value: int_of(value));
CREATE OR REPLACE TEMP MACRO interval_count(recurring) AS CASE
    WHEN truthy(json_extract(recurring, '$.interval_count'))
        THEN int_of(json_extract(recurring, '$.interval_count'))
    WHEN recurring IS NOT NULL THEN 1 END;
"""


# A line `json` reads as an object but DuckDB refuses: in practice an escaped lone
# surrogate, which no UTF-8 text (nor the raw column) can hold.
REFUSED_BY_DUCKDB = (
    "JSON that DuckDB's reader refuses though Python's json reads it "
    "(e.g. an escaped lone surrogate, which is not Unicode text)"
)


# The fields each object is shredded into, in the one JSON parse of its line: a string
# field as VARCHAR, the rest (ids that may be expanded objects, numbers, objects) as JSON.
_TEXT_FIELDS = {"type", "currency", "email", "name", "status", "billing_reason", "failure_code"}
_FIELDS = {
    "prices": ("product", "type", "currency", "unit_amount", "recurring", "active", "created"),
    "customers": ("email", "name", "created", "currency", "metadata", "deleted"),
    "subscriptions": (
        "customer", "status", "created", "start_date", "trial_start", "trial_end",
        "canceled_at", "ended_at", "current_period_start", "current_period_end",
        "cancel_at_period_end", "cancellation_details", "items",
    ),
    "invoices": (
        "customer", "subscription", "parent", "status", "currency", "created", "period_start",
        "period_end", "amount_due", "amount_paid", "attempt_count", "billing_reason", "lines",
    ),
    "charges": ("customer", "invoice", "amount", "currency", "created", "status", "failure_code"),
    INVOICE_LINES_FILE: ("invoice",),
}  # fmt: skip
_NESTED = {"lines": {"data": ["JSON"], "has_more": "JSON"}}
# An invoice line, shredded once (both API shapes).
_LINE_SHAPE = {
    **{name: "JSON" for name in ("id", "amount", "quantity", "price", "subscription")},
    **{name: "JSON" for name in ("subscription_item", "proration", "period", "discount_amounts")},
    "currency": "VARCHAR",
    "type": "VARCHAR",
    "pricing": {"price_details": {"price": "JSON", "product": "JSON"}},
    "parent": {
        "type": "VARCHAR",
        "subscription_item_details": "JSON",
        "invoice_item_details": "JSON",
    },
}


def _shape(resource: str) -> str:
    shape = {"id": "JSON"}
    for name in _FIELDS[resource]:
        shape[name] = _NESTED.get(name) or ("VARCHAR" if name in _TEXT_FIELDS else "JSON")
    return json.dumps(shape)


def read_export(
    con, folder: Path, created_gte: int | None, run: RunWindow, tables: dict[str, RawTable]
) -> Extracted:
    """Every billing table from the export `folder` in DuckDB connection `con`.

    `tables` maps resource → raw table (`invoice_lines` for the lines). Invoices and
    charges are read from `created_gte` (Unix seconds) on, the rest in full.
    """
    started = time.monotonic()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(_MACROS)
    bad: list[BadRecord] = []
    for resource in ("prices", "customers", "subscriptions", "invoices"):
        bad.extend(_read_lines(con, folder, resource))
        _keep_latest(con, resource, created_gte if resource == "invoices" else None)
    _price_list(con)
    _invoice_lines(con, folder, bad)
    bad.extend(_read_lines(con, folder, "charges"))
    _keep_latest(con, "charges", created_gte)
    _first_missing_field_fails_the_load(con)
    loaded_at = utc_now()
    batches = [
        Batch(tables[name], rows=_rows(con, tables[name], select, run, loaded_at))
        for name, select in _SELECTS.items()
    ]
    rows = sum(batch.rows.num_rows for batch in batches)
    print(f"billing export read in bulk: {rows:,} rows in {time.monotonic() - started:.1f}s")
    return Extracted(batches, bad)


# Rows of an Arrow table DuckDB scans per thread: small enough that an export of a few
# thousand invoices is parsed on every core (a table's row group, 122,880 rows, is not).
_SCAN_CHUNK = 4096


def _read_lines(con, folder: Path, resource: str) -> list[BadRecord]:
    """`<resource>.jsonl` into temp table `lines_<resource>` (line_no, text, id, o: the
    object shredded into its fields) of the lines that hold an object with an id; the bad
    lines are returned, worded as `json` words them. A missing file is an empty table."""
    path = export_file(folder, resource)
    data = path.read_bytes().removeprefix(_BOM) if path.is_file() else b""
    con.register("split_lines", _lines_as_arrow(data))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE judged_{resource} AS
        WITH parsed AS (
            SELECT line_no, data, text,
                   -- one JSON parse (a line's \\r\\n is JSON whitespace); NULL where the
                   -- text is not JSON or not UTF-8
                   try(json_transform(text, '{_shape(resource)}')) AS o
            FROM (SELECT line_no, data, try(decode(data)) AS text FROM split_lines)
        )
        SELECT line_no, o,
               CASE
                   WHEN o IS NULL THEN
                       CASE WHEN trim(text, chr(9) || chr(10) || chr(11) || chr(12) || chr(13)
                                            || ' ') = '' THEN 'blank' ELSE 'check' END
                   -- an object with a non-empty string id (other JSON has no id)
                   WHEN json_type(o.id) IS DISTINCT FROM 'VARCHAR' THEN 'check'
                   WHEN json_extract_string(o.id, '$') = '' THEN 'check'
                   ELSE 'good'
               END AS verdict,
               CASE WHEN verdict = 'good' THEN json_extract_string(o.id, '$') END AS id,
               CASE WHEN verdict = 'good' THEN regexp_replace(text, '[\\r\\n]+$', '') END AS text,
               CASE WHEN verdict = 'check' THEN data END AS data
        FROM parsed
        """
    )
    con.unregister("split_lines")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW lines_{resource} AS "
        f"SELECT line_no, text, id, o FROM judged_{resource} WHERE verdict = 'good'"
    )
    checked = con.execute(
        f"SELECT line_no, data FROM judged_{resource} WHERE verdict = 'check' ORDER BY line_no"
    ).fetchall()
    return [_bad_line(resource, line_no, bytes(data)) for line_no, data in checked]


def _lines_as_arrow(data: bytes) -> pa.Table:
    """The lines of `data` (each with its newline) and their 1-based numbers, without a
    copy: the line ends are found by numpy and laid over the bytes as Arrow offsets."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n")) + 1
    if not len(ends) or ends[-1] != len(data):
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64) if data else np.zeros(1, np.int64)
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    numbers = np.arange(1, len(lines) + 1, dtype=np.int64)
    line_no = pa.Array.from_buffers(pa.int64(), len(lines), [None, pa.py_buffer(numbers)])
    table = pa.Table.from_arrays([line_no, lines], names=["line_no", "data"])
    return pa.Table.from_batches(table.to_batches(_SCAN_CHUNK), table.schema)


def _bad_line(resource: str, line_no: int, data: bytes) -> BadRecord:
    line = _parse_line_with_json(line_no, data.rstrip(b"\r\n"))
    kind = resource.removesuffix("s")
    return BadRecord(kind, f"{resource}.jsonl:{line_no}", line.raw, line.error or REFUSED_BY_DUCKDB)


def _keep_latest(con, resource: str, created_gte: int | None) -> None:
    """View `latest_<resource>`: the last copy of each id (from `created_gte` on, if
    given). Most ids come once: only the repeated ones are ranked."""
    since = (
        f"AND coalesce(TRY_CAST(text_of(o.created) AS DOUBLE), 0) >= {int(created_gte)}"
        if created_gte is not None
        else ""
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE superseded_{resource} AS
        WITH candidates AS (SELECT id, line_no FROM lines_{resource} WHERE true {since})
        SELECT line_no FROM candidates
        WHERE id IN (SELECT id FROM candidates GROUP BY id HAVING count(*) > 1)
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY line_no DESC) > 1;

        CREATE OR REPLACE TEMP TABLE set_aside_{resource} (id VARCHAR);

        CREATE OR REPLACE TEMP VIEW latest_{resource} AS
        SELECT id, text, o, line_no FROM lines_{resource}
        WHERE line_no NOT IN (SELECT line_no FROM superseded_{resource}) {since}
          AND id NOT IN (SELECT id FROM set_aside_{resource});
        """
    )


def _price_list(con) -> None:
    """Every whole price object known: `/v1/prices`, then the first one each subscription
    item carries (a price named by id in the newer shape resolves here)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE price_list AS
        WITH items AS (
            SELECT line_no, unnest(items) AS item, generate_subscripts(items, 1) AS position
            FROM (SELECT line_no, CAST(json_extract(o.items, '$.data') AS JSON[]) AS items
                  FROM lines_subscriptions)
        ), item_prices AS (
            SELECT json_extract(item, '$.price') AS price,
                   json_extract_string(item, '$.price.id') AS price_id, line_no, position
            FROM items WHERE json_type(item, '$.price') = 'OBJECT'
        )
        SELECT id AS price_id, text::JSON AS price FROM latest_prices
        UNION ALL
        SELECT price_id, price FROM item_prices
        WHERE price_id <> '' AND price_id NOT IN (SELECT id FROM latest_prices)
        QUALIFY row_number() OVER (PARTITION BY price_id ORDER BY line_no, position) = 1
        """
    )


def _invoice_lines(con, folder: Path, bad: list[BadRecord]) -> None:
    """`invoice_line_list` (invoice_id, position, line, l: the line shredded) of every
    invoice kept, and the invoices whose cut-short list cannot be completed set aside as
    bad (they fail the night). `invoice_lines.jsonl` is read only when a list is cut short."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE embedded AS
        SELECT id AS invoice_id, truthy(o.lines.has_more) AS has_more,
               unnest(o.lines.data) AS line, generate_subscripts(o.lines.data, 1) AS position
        FROM latest_invoices
        """
    )
    cut_short = con.execute(
        "SELECT count(*) FROM latest_invoices WHERE truthy(o.lines.has_more)"
    ).fetchall()[0][0]
    if cut_short:
        bad.extend(_read_lines(con, folder, INVOICE_LINES_FILE))
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW lines_{INVOICE_LINES_FILE} AS SELECT "
            "NULL::BIGINT AS line_no, NULL::VARCHAR AS text, NULL::VARCHAR AS id, "
            f"json_transform('{{}}', '{_shape(INVOICE_LINES_FILE)}') AS o LIMIT 0"
        )
    con.execute(_COMPLETED_LISTS_SQL.format(line_shape=json.dumps(_LINE_SHAPE)))
    incomplete = con.execute(
        """
        SELECT id, text FROM latest_invoices
        WHERE truthy(o.lines.has_more) AND id NOT IN (SELECT invoice_id FROM rest_of_lists)
        ORDER BY id
        """
    ).fetchall()
    for invoice_id, text in incomplete:
        bad.append(
            BadRecord(
                "invoice",
                f"invoices: {invoice_id}",
                text,
                "lines.has_more is true but none of its remaining lines came "
                "(invoice_lines.jsonl / GET /v1/invoices/{id}/lines): its MRR would be short",
                fails_night=True,
            )
        )
    if incomplete:
        con.executemany("INSERT INTO set_aside_invoices VALUES (?)", [[i] for i, _ in incomplete])


# A cut-short list: its embedded lines (each id at its first place, with its last copy),
# a line of the rest replacing the embedded one of the same id, then the rest's new ids
# in the order they first appear. A whole list: its embedded lines as they are.
_COMPLETED_LISTS_SQL = """
CREATE OR REPLACE TEMP TABLE rest_of_lists AS
SELECT oid(o.invoice) AS invoice_id, id AS line_id, text::JSON AS line,
       min(line_no) OVER (PARTITION BY oid(o.invoice), id) AS first_seen
FROM lines_invoice_lines
WHERE coalesce(oid(o.invoice), '') <> ''
QUALIFY row_number() OVER (PARTITION BY oid(o.invoice), id ORDER BY line_no DESC) = 1;

CREATE OR REPLACE TEMP TABLE invoice_line_list AS
WITH whole AS (
    SELECT invoice_id, position - 1 AS position, line FROM embedded WHERE NOT has_more
), embedded_by_id AS (
    SELECT invoice_id, json_extract_string(line, '$.id') AS line_id,
           min(position) AS first_position, arg_max(line, position) AS line
    FROM embedded
    WHERE has_more AND coalesce(json_extract_string(line, '$.id'), '') <> ''
      AND invoice_id IN (SELECT invoice_id FROM rest_of_lists)
    GROUP BY ALL
), completed AS (
    SELECT invoice_id, coalesce(r.line, e.line) AS line, 0 AS part, first_position AS place
    FROM embedded_by_id AS e LEFT JOIN rest_of_lists AS r USING (invoice_id, line_id)
    UNION ALL
    SELECT invoice_id, line, 1 AS part, first_seen AS place
    FROM rest_of_lists AS r
    WHERE invoice_id IN (SELECT id FROM latest_invoices WHERE truthy(o.lines.has_more))
      AND NOT EXISTS (
          SELECT 1 FROM embedded_by_id AS e
          WHERE e.invoice_id = r.invoice_id AND e.line_id = r.line_id
      )
), listed AS (
    SELECT * FROM whole
    UNION ALL
    SELECT invoice_id, row_number() OVER (PARTITION BY invoice_id ORDER BY part, place) - 1, line
    FROM completed
)
SELECT *, json_transform(line, '{line_shape}') AS l FROM listed;
"""


def _first_missing_field_fails_the_load(con) -> None:
    """The first object (in resource order, then by id) without a field the models need
    fails the load, named as the object reader names it: an invoice's own fields before
    its lines', invoice by invoice."""
    for resource, fields in _REQUIRED.items():
        found = _first_problem(con, f"latest_{resource}", "id", _field_checks(resource, fields))
        if resource == "invoices":
            in_lines = _first_problem(con, "invoice_line_list", "invoice_id", _LINE_CHECKS)
            if in_lines and (not found or in_lines[0] < found[0]):
                found = in_lines
        if found:
            object_id, problem = found
            raise ContractError(
                f"billing {resource.removesuffix('s')} {object_id}: missing field {problem} "
                "that the models need"
            )


def _first_problem(con, table: str, key: str, checks: str) -> tuple[str, str] | None:
    order = "id" if key == "id" else f"{key}, position"
    found = con.execute(
        f"SELECT {key}, problem FROM (SELECT *, {checks} AS problem FROM {table}) "
        f"WHERE problem IS NOT NULL ORDER BY {order} LIMIT 1"
    ).fetchall()
    return found[0] if found else None


def _field_checks(resource: str, fields: tuple[str, ...]) -> str:
    """A field is missing when its key is absent (a null value is there)."""
    deleted_ok = "NOT truthy(o.deleted) AND " if resource == "customers" else ""
    cases = " ".join(
        f"WHEN {deleted_ok}o.{name} IS NULL AND NOT json_exists(text, '$.{name}') THEN '''{name}'''"
        for name in fields
    )
    return f"CASE {cases} END"


_REQUIRED = {
    "customers": ("created",),  # a deleted customer carries only id and deleted
    "subscriptions": ("customer", "status", "created"),
    "invoices": ("customer", "status", "currency", "created"),
    "charges": ("customer", "amount", "currency", "created", "status"),
}


def _line_check(value: str, name: str) -> str:
    where = f"'lines.data[' || position || '].{name}'"
    return f"WHEN coalesce(json_type({value}), 'NULL') = 'NULL' THEN {where}"


# A line's required values must be present and not null (the object reader's _line_field).
_LINE_CHECKS = f"""CASE
    {_line_check("l.period", "''period''")}
    {_line_check("l.id", "''id''")}
    {_line_check("l.amount", "''amount''")}
    {_line_check("json_extract(l.period, '$.start')", "period.''start''")}
    {_line_check("json_extract(l.period, '$.end')", "period.''end''")}
END"""

_RECURRING = "CASE WHEN truthy(o.recurring) THEN o.recurring END"

_SELECTS = {
    "prices": f"""
        SELECT id, oid(o.product) AS product,
               coalesce(nullif(o.type, ''),
                        CASE WHEN {_RECURRING} IS NOT NULL THEN 'recurring' END) AS type,
               nullif(lower(coalesce(o.currency, '')), '') AS currency,
               int_of(o.unit_amount) AS unit_amount,
               json_extract_string({_RECURRING}, '$.interval') AS recurring_interval,
               interval_count({_RECURRING}) AS recurring_interval_count,
               CAST(text_of(o.active) AS BOOLEAN) AS active,
               epoch_at(o.created) AS created,
               text AS raw
        FROM latest_prices""",
    "customers": """
        SELECT id, o.email, o.name, epoch_at(o.created) AS created, o.currency,
               nullif(json_extract_string(o.metadata, '$.crm_account_id'), '') AS crm_account_id,
               truthy(o.deleted) AS deleted, text AS raw
        FROM latest_customers""",
    "subscriptions": """
        SELECT id, oid(o.customer) AS customer, o.status, epoch_at(o.created) AS created,
               epoch_at(o.start_date) AS start_date,
               epoch_at(o.trial_start) AS trial_start,
               epoch_at(o.trial_end) AS trial_end,
               truthy(o.cancel_at_period_end) AS cancel_at_period_end,
               epoch_at(o.canceled_at) AS canceled_at,
               epoch_at(o.ended_at) AS ended_at,
               CASE WHEN truthy(o.current_period_start) THEN epoch_at(o.current_period_start)
                    ELSE unixtime(list_min(item_times(o.items, '$.data[*].current_period_start')))
               END AS current_period_start,
               CASE WHEN truthy(o.current_period_end) THEN epoch_at(o.current_period_end)
                    ELSE unixtime(list_max(item_times(o.items, '$.data[*].current_period_end')))
               END AS current_period_end,
               json_extract_string(o.cancellation_details, '$.reason') AS cancellation_reason,
               json_extract_string(o.cancellation_details, '$.feedback') AS cancellation_feedback,
               json_extract_string(o.cancellation_details, '$.comment') AS cancellation_comment,
               text AS raw
        FROM latest_subscriptions""",
    "invoices": """
        SELECT id, oid(o.customer) AS customer,
               coalesce(nullif(oid(o.subscription), ''),
                        oid(json_extract(o.parent, '$.subscription_details.subscription')))
                   AS subscription,
               o.status, lower(o.currency) AS currency,
               epoch_at(o.created) AS created,
               epoch_at(o.period_start) AS period_start,
               epoch_at(o.period_end) AS period_end,
               int_of(o.amount_due) AS amount_due,
               int_of(o.amount_paid) AS amount_paid,
               int_of(o.attempt_count) AS attempt_count,
               o.billing_reason,
               text AS raw
        FROM latest_invoices""",
    "invoice_lines": """
        WITH facts AS (
            SELECT ll.invoice_id, ll.position, ll.line, ll.l, i.o.currency AS invoice_currency,
                   ll.l.parent.type AS kind,
                   CASE ll.l.parent.type
                       WHEN 'subscription_item_details' THEN
                           CASE WHEN truthy(ll.l.parent.subscription_item_details)
                                THEN ll.l.parent.subscription_item_details END
                       WHEN 'invoice_item_details' THEN
                           CASE WHEN truthy(ll.l.parent.invoice_item_details)
                                THEN ll.l.parent.invoice_item_details END
                       ELSE CASE
                           WHEN truthy(ll.l.parent.subscription_item_details)
                               THEN ll.l.parent.subscription_item_details
                           WHEN truthy(ll.l.parent.invoice_item_details)
                               THEN ll.l.parent.invoice_item_details END
                   END AS details,
                   coalesce(ll.l.price, ll.l.pricing.price_details.price) AS price_value,
                   coalesce(nullif(oid(i.o.subscription), ''),
                            oid(json_extract(i.o.parent, '$.subscription_details.subscription')))
                       AS invoice_subscription
            FROM invoice_line_list AS ll JOIN latest_invoices AS i ON i.id = ll.invoice_id
        ), named AS (
            SELECT *,
                   CASE WHEN json_type(price_value) = 'OBJECT' THEN price_value END AS price_object,
                   oid(price_value) AS price_id,
                   coalesce(nullif(oid(l.subscription_item), ''),
                            oid(json_extract(details, '$.subscription_item'))) AS subscription_item,
                   coalesce(nullif(oid(l.subscription), ''),
                            oid(json_extract(details, '$.subscription'))) AS line_subscription,
                   truthy(coalesce(l.proration, jv(json_extract(details, '$.proration'))))
                       AS proration
            FROM facts
        ), priced AS (
            SELECT n.*,
                   CASE WHEN truthy(price_object) THEN price_object ELSE p.price END AS price,
                   coalesce(nullif(line_subscription, ''), invoice_subscription) AS claimed,
                   coalesce(kind = 'subscription_item_details', false)
                       OR coalesce(l.type = 'subscription', false)
                       OR (kind IS NULL AND coalesce(subscription_item, '') <> '')
                       AS is_subscription_item
            FROM named AS n LEFT JOIN price_list AS p ON p.price_id = coalesce(n.price_id, '')
        ), described AS (
            SELECT *,
                   CASE WHEN truthy(json_extract(price, '$.recurring'))
                        THEN json_extract(price, '$.recurring') END AS recurring,
                   json_extract_string(price, '$.type') AS price_type_given,
                   'invoice ' || invoice_id || ' line ' || text_of(l.id) AS place
            FROM priced
        )
        SELECT invoice_id, text_of(l.id) AS line_id,
               claimed AS subscription, subscription_item, price_id,
               coalesce(nullif(price_type_given, ''),
                        CASE WHEN recurring IS NOT NULL THEN 'recurring' END) AS price_type,
               oid(coalesce(l.pricing.price_details.product,
                            jv(json_extract(price_object, '$.product')))) AS product,
               lower(coalesce(nullif(json_extract_string(price, '$.currency'), ''),
                              nullif(l.currency, ''), invoice_currency)) AS currency,
               int_of(json_extract(price, '$.unit_amount')) AS unit_amount,
               json_extract_string(recurring, '$.interval') AS recurring_interval,
               interval_count(recurring) AS recurring_interval_count,
               int_of(l.quantity) AS quantity,
               int_of(l.amount) AS amount,
               coalesce(list_sum(list_transform(
                   json_extract(l.discount_amounts, '$[*].amount'),
                   lambda value: coalesce(TRY_CAST(text_of(value) AS BIGINT), 0))), 0)
                   AS discount_amount,
               epoch_at(json_extract(l.period, '$.start')) AS period_start,
               epoch_at(json_extract(l.period, '$.end')) AS period_end,
               proration,
               CASE
                   WHEN price_id IS NOT NULL AND price IS NULL THEN
                       place || ': price ' || price_id
                       || ' is in no price list (/v1/prices, prices.jsonl)'
                   WHEN coalesce(json_extract_string(recurring, '$.interval'), '') <> '' THEN NULL
                   WHEN coalesce(claimed, '') <> ''
                       AND NOT (coalesce(price_type_given = 'one_time', false)
                                AND NOT is_subscription_item) THEN
                       place || ': claims subscription ' || claimed
                       || ' but has no recurring interval'
               END AS line_problem,
               line::VARCHAR AS raw
        FROM described""",
    "charges": """
        SELECT id, oid(o.customer) AS customer, oid(o.invoice) AS invoice,
               int_of(o.amount) AS amount, lower(o.currency) AS currency,
               epoch_at(o.created) AS created, o.status, o.failure_code, text AS raw
        FROM latest_charges""",
}


def _rows(con, table: RawTable, select: str, run: RunWindow, loaded_at) -> pa.Table:
    """The table's rows (in no order: the load merges them by key)."""
    columns = ", ".join(table.columns)
    run_id = run.run_id.replace("'", "''")
    result = con.sql(
        f"SELECT {columns}, 'billing' AS _source, '{run_id}' AS _run_id, "
        f"TIMESTAMP '{loaded_at.isoformat(sep=' ')}' AS _loaded_at "
        f"FROM ({select}) AS objects"
    ).to_arrow_table()
    return result.cast(table.arrow_schema())
