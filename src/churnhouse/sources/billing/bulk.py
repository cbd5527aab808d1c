"""The export folder's bulk path: DuckDB parses the JSON Lines and builds the raw tables.

It gives the same rows, quarantine records and order as the per-object path in
`extract.py` (which the API and anything unusual still take), at several times the
speed. Python only splits the files into lines; DuckDB checks each line and flattens
both Stripe shapes in SQL.

Two guards keep it exact:
- `raw` is the object as `json.dumps(obj, ensure_ascii=False)` writes it. A line
  already in that form (what the simulator and Python exporters write) is kept as
  it is; any other line (other spacing, escapes, floats, repeated keys, a line
  DuckDB cannot parse) is parsed in Python as before, which also gives a bad line
  its exact reason.
- Every field the rows read must have the type the per-object code expects. If any
  object breaks that (a missing required field, a number where an id belongs),
  `extract_export` returns None and the caller takes the per-object path, which
  raises or copes exactly as it always did.

Known difference: a nested object repeating a key (invalid for Stripe) is read with
the first value here and the last in Python.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from churnhouse.contracts import BadRecord, Batch, Extracted, ExtractWindow, RunWindow
from churnhouse.sources.billing.export import (
    INVOICE_LINES_FILE,
    ExportLine,
    export_file,
    parse_line,
)

_BOM = b"\xef\xbb\xbf"
_MISSING_LINES = (
    "lines.has_more is true but none of its remaining lines came "
    "(invoice_lines.jsonl / GET /v1/invoices/{id}/lines): its MRR would be short"
)

# py_fmt: JSON text spaced the way json.dumps spaces it (", " and ": "): DuckDB's
# pretty form with its line breaks and indents taken out (a string holds no raw line
# break, so every one is between tokens). py_or: Python's `a or b` on strings.
_MACROS = r"""
CREATE MACRO py_fmt(x) AS
    regexp_replace(regexp_replace(json_pretty(x), ',\n *', ', ', 'g'), '\n *', '', 'g');
CREATE MACRO jt(j, p) AS coalesce(json_type(j, p), 'NULL');
CREATE MACRO js(j, p) AS json_extract_string(j, p);
CREATE MACRO oid(j, p) AS CASE WHEN json_type(j, p) = 'OBJECT'
    THEN json_extract_string(j, p || '.id') ELSE json_extract_string(j, p) END;
CREATE MACRO ts(j, p) AS make_timestamp(json_extract_string(j, p)::BIGINT * 1000000);
CREATE MACRO full_obj(j, p) AS coalesce(
    json_type(j, p) = 'OBJECT' AND json_extract(j, p)::VARCHAR <> '{}', false);
CREATE MACRO is_true(j, p) AS coalesce(json_extract_string(j, p) = 'true', false);
CREATE MACRO py_or(a, b) AS CASE WHEN coalesce(a, '') <> '' THEN a ELSE b END;
"""

# A line kept as written must be json.dumps' form: no \u escapes (json.dumps writes
# them for control characters only, in lower case), no number with a fraction or an
# exponent (spelt differently by DuckDB and Python), and no repeated top-level key.
_KEEP_AS_WRITTEN = r"""
starts_with(text, '{')
AND json_type(id) = 'VARCHAR' AND json_extract_string(id, '$') <> ''
AND NOT contains(text, '\u')
AND NOT regexp_matches(text, '[:,\[] ?-?[0-9]+[.eE]')
AND len(keys) = len(list_distinct(keys))
"""


def _guard_sql(json_col: str, spec: dict[str, str]) -> tuple[str, str]:
    """(the list of values to extract, SQL true when each value at a path in `spec` has a
    type the per-object code reads as its kind). The document is parsed once, into `v`."""
    paths: list[str] = []

    def value(path: str) -> str:
        if path == "$":
            return json_col
        if path not in paths:
            paths.append(path)
        return f"v[{paths.index(path) + 1}]"

    checks = []
    for path, kinds in spec.items():
        for kind in kinds.split():
            checks.append(
                _check_sql(value(path), kind, value(f"{path}.id") if kind == "id" else "")
            )
    listed = ", ".join(f"'{path}'" for path in paths) or "'$.id'"
    return f"json_extract({json_col}, [{listed}])", " AND ".join(checks)


def _check_sql(v: str, kind: str, v_id: str) -> str:
    t = f"coalesce(json_type({v}), 'NULL')"
    return {
        "str": f"{t} IN ('VARCHAR', 'NULL')",
        "int": f"{t} IN ('BIGINT', 'UBIGINT', 'NULL')",
        "bool": f"{t} IN ('BOOLEAN', 'NULL')",
        "obj": f"{t} IN ('OBJECT', 'NULL')",
        "arr": f"{t} IN ('ARRAY', 'NULL')",
        "id": f"({t} IN ('VARCHAR', 'NULL') OR ({t} = 'OBJECT' "
        f"AND coalesce(json_type({v_id}), 'NULL') IN ('VARCHAR', 'NULL')))",
        # .lower() is applied: ASCII so DuckDB's lower() is Python's.
        "ascii": f"({t} = 'NULL' OR ({t} = 'VARCHAR' AND NOT regexp_matches("
        f"json_extract_string({v}, '$'), '[^\\x00-\\x7F]')))",
        "present": f"{v} IS NOT NULL",
        "set": f"{t} <> 'NULL'",
    }[kind]


_CUSTOMER = {
    "$.email": "str", "$.name": "str", "$.created": "int", "$.currency": "str",
    "$.metadata": "obj", "$.metadata.crm_account_id": "str", "$.deleted": "bool",
}  # fmt: skip
_PRICE = {
    "$.product": "id", "$.type": "str", "$.currency": "ascii", "$.unit_amount": "int",
    "$.recurring": "obj", "$.recurring.interval": "str", "$.recurring.interval_count": "int",
    "$.active": "bool", "$.created": "int",
}  # fmt: skip
_SUBSCRIPTION = {
    "$.customer": "id present", "$.status": "str present", "$.created": "int present",
    "$.start_date": "int", "$.trial_start": "int", "$.trial_end": "int",
    "$.canceled_at": "int", "$.ended_at": "int", "$.current_period_start": "int",
    "$.current_period_end": "int", "$.cancel_at_period_end": "bool",
    "$.cancellation_details": "obj", "$.cancellation_details.reason": "str",
    "$.cancellation_details.feedback": "str", "$.cancellation_details.comment": "str",
    "$.items": "obj", "$.items.data": "arr",
}  # fmt: skip
_SUBSCRIPTION_ITEM = {
    "$": "obj set",
    "$.current_period_start": "int",
    "$.current_period_end": "int",
}
_INVOICE = {
    "$.customer": "id present", "$.status": "str present", "$.currency": "ascii set",
    "$.created": "int present", "$.period_start": "int", "$.period_end": "int",
    "$.amount_due": "int", "$.amount_paid": "int", "$.attempt_count": "int",
    "$.billing_reason": "str", "$.subscription": "id", "$.parent": "obj",
    "$.parent.subscription_details": "obj", "$.parent.subscription_details.subscription": "id",
    "$.lines": "obj", "$.lines.data": "arr", "$.lines.has_more": "bool",
}  # fmt: skip
_CHARGE = {
    "$.customer": "id present", "$.invoice": "id", "$.amount": "int present",
    "$.currency": "ascii set", "$.created": "int present", "$.status": "str present",
    "$.failure_code": "str",
}  # fmt: skip
_LINE = {
    "$": "obj set", "$.id": "str set", "$.amount": "int set", "$.period": "obj set",
    "$.period.start": "int set", "$.period.end": "int set", "$.quantity": "int",
    "$.currency": "ascii", "$.type": "str", "$.subscription": "id", "$.subscription_item": "id",
    "$.proration": "bool", "$.price": "id", "$.pricing": "obj", "$.pricing.price_details": "obj",
    "$.pricing.price_details.price": "id", "$.pricing.price_details.product": "id",
    "$.parent": "obj", "$.parent.type": "str", "$.discount_amounts": "arr",
    **{
        f"$.parent.{kind}{leaf}": check
        for kind in ("subscription_item_details", "invoice_item_details")
        for leaf, check in (("", "obj"), (".subscription", "id"),
                            (".subscription_item", "id"), (".proration", "bool"))
    },
}  # fmt: skip
_LINE_PRICE = {
    "$": "obj", "$.type": "str", "$.currency": "ascii", "$.unit_amount": "int",
    "$.recurring": "obj", "$.recurring.interval": "str", "$.recurring.interval_count": "int",
    "$.product": "id",
}  # fmt: skip


class _Unusual(Exception):
    """The export holds something only the per-object path reproduces exactly."""


def extract_export(window: ExtractWindow, folder: Path) -> Extracted | None:
    """All billing tables from an export folder, or None when the per-object path must run."""
    import duckdb

    if not folder.is_dir():
        return None
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 1")
        # Each table here is well under one row group (122,880 rows): DuckDB would run it
        # on one thread anyway, and idle workers only cost CPU on a shared machine.
        con.execute("SET threads TO 1")
        con.execute(_MACROS)
        return _Export(con, folder, window).extract()
    except _Unusual:
        return None
    finally:
        con.close()


class _Export:
    def __init__(self, con, folder: Path, window: ExtractWindow) -> None:
        self.con = con
        self.folder = folder
        self.run: RunWindow = window.run
        since = window.since
        from datetime import UTC

        self.created_gte = int(since.replace(tzinfo=UTC).timestamp()) if since else None
        self.bad: list[BadRecord] = []

    def extract(self) -> Extracted:
        import importlib

        per_object = importlib.import_module("churnhouse.sources.billing.extract")

        for resource in ("prices", "customers", "subscriptions", "invoices"):
            self._stage(resource)
        self._latest("prices")
        self._latest("customers")
        self._latest("subscriptions")
        self._latest("invoices", incremental=True)
        self._check("prices", _PRICE)
        self._check("customers", _CUSTOMER)
        self._check_customers_created()
        self._check("subscriptions", _SUBSCRIPTION)
        self._check_subscription_items()
        self._check("invoices", _INVOICE)
        self._price_map()
        batches = [
            self._batch(per_object.PRICES, parse_once(_PRICES_SQL, "l_prices", ("j",))),
            self._batch(per_object.CUSTOMERS, parse_once(_CUSTOMERS_SQL, "l_customers", ("j",))),
            self._batch(
                per_object.SUBSCRIPTIONS, parse_once(_SUBSCRIPTIONS_SQL, "l_subscriptions", ("j",))
            ),
        ]
        batches.extend(self._invoice_batches(per_object))
        self._stage("charges")
        self._latest("charges", incremental=True)
        self._check("charges", _CHARGE)
        batches.append(
            self._batch(per_object.CHARGES, parse_once(_CHARGES_SQL, "l_charges", ("j",)))
        )
        return Extracted(batches, self.bad)

    # -- reading -----------------------------------------------------------------

    def _stage(self, resource: str) -> None:
        """`f_<resource>` (line_no, id, j): each good object of the file, in json.dumps form."""
        import pyarrow as pa

        numbers, texts, odd = _split_lines(export_file(self.folder, resource))
        self.con.register("_lines", pa.table({"line_no": pa.array(numbers, pa.int64()),
                                              "text": pa.array(texts, pa.string())}))  # fmt: skip
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _checked AS SELECT line_no, text, "
            "coalesce(json_valid(text), false) AS valid FROM _lines"
        )
        self.con.unregister("_lines")
        # Only valid JSON reaches the checks (DuckDB may order a WHERE's terms freely), and
        # py_fmt runs as a column: inside a WHERE with other terms it ran 10 times slower.
        self.con.execute("CREATE OR REPLACE TEMP TABLE _valid AS FROM _checked WHERE valid")
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _spaced AS SELECT line_no, text, "
            "py_fmt(text) AS spaced, json_keys(text) AS keys, "
            "json_extract(text, '$.id') AS id FROM _valid"
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _kept AS SELECT line_no, "
            "json_extract_string(id, '$') AS id, text AS j FROM _spaced "
            f"WHERE spaced = text AND {_KEEP_AS_WRITTEN}"
        )
        others = self.con.execute(
            "SELECT line_no, text FROM _checked WHERE line_no NOT IN (SELECT line_no FROM _kept)"
        ).fetchall()
        odd.extend((line_no, text.encode("utf-8")) for line_no, text in others)
        parsed = self._parse_in_python(resource, sorted(odd))
        self.con.register("_parsed", pa.table({
            "line_no": pa.array([line_no for line_no, _, _ in parsed], pa.int64()),
            "id": pa.array([key for _, key, _ in parsed], pa.string()),
            "j": pa.array([text for _, _, text in parsed], pa.string()),
        }))  # fmt: skip
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE f_{resource} AS "
            "SELECT line_no, id, j FROM _kept UNION ALL SELECT line_no, id, j FROM _parsed"
        )
        self.con.unregister("_parsed")

    def _parse_in_python(self, resource: str, lines: list[tuple[int, bytes]]) -> list:
        """Lines DuckDB did not keep: bad ones to quarantine, good ones in json.dumps form."""
        good = []
        for line_no, data in lines:
            parsed: ExportLine = parse_line(line_no, data)
            if parsed.error is not None:
                kind = resource.removesuffix("s")
                self.bad.append(
                    BadRecord(kind, f"{resource}.jsonl:{line_no}", parsed.raw, parsed.error)
                )
                continue
            text = json.dumps(parsed.obj, ensure_ascii=False)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:  # a lone surrogate: DuckDB cannot hold it
                raise _Unusual(f"{resource}.jsonl:{line_no}") from error
            good.append((line_no, parsed.obj["id"], text))
        return good

    def _latest(self, resource: str, incremental: bool = False) -> None:
        """`l_<resource>` (id, j): each id's last copy, by id (incremental ones from `since`)."""
        source = f"f_{resource}"
        if incremental and self.created_gte is not None:
            self._require(source, {"$.created": "int"}, "j")
            source = (
                f"(SELECT * FROM f_{resource} WHERE "
                f"coalesce(js(j, '$.created')::BIGINT, 0) >= {int(self.created_gte)})"
            )
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE l_{resource} AS SELECT id, "
            f"arg_max(j, line_no) AS j FROM {source} GROUP BY id ORDER BY id"
        )

    # -- guards ------------------------------------------------------------------

    def _require(self, table: str, spec: dict[str, str], json_col: str = "j") -> None:
        values, checks = _guard_sql(json_col, spec)
        # MATERIALIZED: else DuckDB computes `v` again for each of its uses (6x slower).
        wrong = self.con.execute(
            f"WITH x AS MATERIALIZED (SELECT {values} AS v, {json_col} FROM {table}) "
            f"SELECT count(*) FROM x WHERE NOT coalesce({checks}, false)"
        ).fetchall()[0][0]
        if wrong:
            raise _Unusual(f"{table}: {wrong} object(s) outside the bulk path's checks")

    def _require_sql(self, table: str, condition: str) -> None:
        wrong = self.con.execute(
            f"SELECT count(*) FROM {table} WHERE NOT coalesce({condition}, false)"
        ).fetchall()[0][0]
        if wrong:
            raise _Unusual(f"{table}: {wrong} object(s) outside the bulk path's checks")

    def _check(self, resource: str, spec: dict[str, str]) -> None:
        self._require(f"l_{resource}", spec)

    def _check_customers_created(self) -> None:
        # A deleted customer may lack `created`; any other must carry it.
        self._require("(SELECT * FROM l_customers WHERE NOT is_true(j, '$.deleted'))",
                      {"$.created": "present"})  # fmt: skip

    def _check_subscription_items(self) -> None:
        """Items of every copy (each teaches prices), and their periods."""
        self._require("f_subscriptions", {"$.items": "obj", "$.items.data": "arr"})
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE sub_items AS SELECT line_no, "
            "unnest(json_extract(j, '$.items.data[*]')) AS item, "
            "unnest(range(json_array_length(j, '$.items.data')::BIGINT)) AS pos "
            "FROM f_subscriptions"
        )
        self._require("sub_items", {**_SUBSCRIPTION_ITEM, "$.price": "id"}, "item")

    # -- prices a line may name --------------------------------------------------

    def _price_map(self) -> None:
        """`price_map` (id, j): prices.jsonl (last copy), else the first subscription item's."""
        self.con.execute(
            """
            CREATE OR REPLACE TEMP TABLE price_map AS
            SELECT id, j FROM l_prices
            UNION ALL
            SELECT id, arg_min(price, (line_no, pos)) FROM (
                SELECT js(item, '$.price.id') AS id, json_extract(item, '$.price') AS price,
                       line_no, pos
                FROM sub_items WHERE json_type(item, '$.price') = 'OBJECT'
            ) WHERE coalesce(id, '') <> '' AND id NOT IN (SELECT id FROM l_prices)
            GROUP BY id
            """
        )

    # -- invoices and their lines ------------------------------------------------

    def _invoice_batches(self, per_object) -> list[Batch]:
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE l_inv AS SELECT id, j, "
            "is_true(j, '$.lines.has_more') AS short FROM l_invoices"
        )
        short = self.con.execute("SELECT count(*) FROM l_inv WHERE short").fetchall()[0][0]
        self._extra_lines(read_file=bool(short))
        missing = self.con.execute(
            "SELECT id, j FROM l_inv WHERE short AND id NOT IN (SELECT owner FROM extra) "
            "ORDER BY id"
        ).fetchall()
        for key, text in missing:
            self.bad.append(
                BadRecord("invoice", f"invoices: {key}", text, _MISSING_LINES, fails_night=True)
            )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE inv AS SELECT * FROM l_inv "
            "WHERE NOT short OR id IN (SELECT owner FROM extra)"
        )
        self.con.execute(_LINE_SOURCES_SQL)
        self._require("line_src", _LINE, "l")
        self._require_sql(
            "line_src",
            "coalesce(list_bool_and(list_transform(json_extract(l, '$.discount_amounts[*]'), "
            "lambda d: json_type(d) = 'OBJECT' AND jt(d, '$.amount') IN "
            "('BIGINT', 'UBIGINT', 'NULL'))), true)",
        )
        self.con.execute(parse_once(_LINE_FACTS_SQL, "line_src", ("l", "inv_j"), "facts"))
        self._require("line_facts", _LINE_PRICE, "price")
        # The raw of an embedded line is json.dumps' form only if it is a piece of its
        # invoice's text (which is in that form): anything else goes the per-object way.
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE line_raw AS SELECT *, "
            "CASE WHEN from_file THEN l::VARCHAR ELSE py_fmt(l::VARCHAR) END AS raw "
            "FROM line_facts"
        )
        self._require_sql("line_raw", "contains(src_text, raw)")
        return [
            self._batch(per_object.INVOICES, parse_once(_INVOICES_SQL, "inv", ("j",))),
            self._batch(
                per_object.INVOICE_LINES,
                parse_once(_INVOICE_LINES_SQL, "line_raw", ("l", "price", "inv_j")),
            ),
        ]

    def _extra_lines(self, read_file: bool) -> None:
        """`extra` (owner, line_id, first_no, j): invoice_lines.jsonl, read only when needed."""
        if read_file:
            self._stage(INVOICE_LINES_FILE)
        else:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE f_{INVOICE_LINES_FILE} (line_no BIGINT, j VARCHAR)"
            )
        self._require(f"f_{INVOICE_LINES_FILE}", {"$.invoice": "id"})
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE extra AS
            SELECT oid(j, '$.invoice') AS owner, js(j, '$.id') AS line_id,
                   min(line_no) AS first_no, arg_max(j, line_no) AS j
            FROM f_{INVOICE_LINES_FILE}
            WHERE coalesce(oid(j, '$.invoice'), '') <> ''
            GROUP BY ALL
            """
        )

    def _batch(self, table, sql: str) -> Batch:

        from churnhouse.contracts import with_meta

        schema = table.arrow_schema()
        rows = self.con.sql(sql).to_arrow_table()
        columns = {name: rows.column(name).cast(schema.field(name).type) for name in table.columns}
        return Batch(table, with_meta(table, columns, "billing", self.run))


_ONE_PATH = re.compile(r"(\w+)\((\w+), '(\$\.[^'*]+)'\)")


def parse_once(sql: str, table: str, columns: tuple[str, ...], tag: str = "") -> str:
    """`sql` reading `FROM {table}` with each `fn(col, '$.path')` on a JSON text column
    taken from one json_extract per column: DuckDB parses a text on every call."""
    paths: dict[str, list[str]] = {column: [] for column in columns}

    def one_value(match: re.Match) -> str:
        function, column, path = match.groups()
        if column not in paths:
            return match.group(0)
        if path not in paths[column]:
            paths[column].append(path)
        return f"{function}(_v{tag}_{column}[{paths[column].index(path) + 1}], '$')"

    rewritten = _ONE_PATH.sub(one_value, sql)
    extracted = ", ".join(
        f"json_extract({column}, [{', '.join(repr(p) for p in listed)}]) AS _v{tag}_{column}"
        for column, listed in paths.items()
        if listed
    )
    # MATERIALIZED: else DuckDB extracts again for each use of a value (6x slower).
    once = f"_once{tag} AS MATERIALIZED (SELECT *, {extracted} FROM {table})"
    rewritten = rewritten.replace("{table}", f"_once{tag}")
    if "WITH " in rewritten:
        return rewritten.replace("WITH ", f"WITH {once}, ", 1)
    return f"WITH {once} {rewritten}"


def _split_lines(path: Path) -> tuple[list[int], list[str], list[tuple[int, bytes]]]:
    """Non-blank lines as text with 1-based numbers; lines that are not UTF-8 apart."""
    numbers: list[int] = []
    texts: list[str] = []
    odd: list[tuple[int, bytes]] = []
    if not path.is_file():
        return numbers, texts, odd
    data = path.read_bytes().removeprefix(_BOM)
    for line_no, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        line = line.rstrip(b"\r\n")
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            odd.append((line_no, line))
            continue
        numbers.append(line_no)
    return numbers, texts, odd


_PRICES_SQL = """
SELECT id, oid(j, '$.product') AS product,
       py_or(js(j, '$.type'), CASE WHEN full_obj(j, '$.recurring') THEN 'recurring' END) AS type,
       nullif(lower(coalesce(js(j, '$.currency'), '')), '') AS currency,
       js(j, '$.unit_amount')::BIGINT AS unit_amount,
       js(j, '$.recurring.interval') AS recurring_interval,
       coalesce(nullif(js(j, '$.recurring.interval_count')::BIGINT, 0),
                CASE WHEN full_obj(j, '$.recurring') THEN 1 END) AS recurring_interval_count,
       CASE WHEN jt(j, '$.active') = 'BOOLEAN' THEN is_true(j, '$.active') END AS active,
       ts(j, '$.created') AS created, j AS raw
FROM {table} ORDER BY id
"""

_CUSTOMERS_SQL = """
SELECT id, js(j, '$.email') AS email, js(j, '$.name') AS name, ts(j, '$.created') AS created,
       js(j, '$.currency') AS currency,
       nullif(js(j, '$.metadata.crm_account_id'), '') AS crm_account_id,
       is_true(j, '$.deleted') AS deleted, j AS raw
FROM {table} ORDER BY id
"""


def _item_period(field: str, pick: str) -> str:
    """From 2025-03-31 the period lives on each subscription item: earliest start, latest end."""
    return (
        f"make_timestamp(coalesce(nullif(js(j, '$.{field}')::BIGINT, 0), {pick}(list_filter("
        f"list_transform(js(j, '$.items.data[*].{field}'), lambda x: x::BIGINT), "
        f"lambda x: x IS NOT NULL AND x <> 0))) * 1000000)"
    )


_SUBSCRIPTIONS_SQL = f"""
SELECT id, oid(j, '$.customer') AS customer, js(j, '$.status') AS status,
       ts(j, '$.created') AS created, ts(j, '$.start_date') AS start_date,
       ts(j, '$.trial_start') AS trial_start, ts(j, '$.trial_end') AS trial_end,
       is_true(j, '$.cancel_at_period_end') AS cancel_at_period_end,
       ts(j, '$.canceled_at') AS canceled_at, ts(j, '$.ended_at') AS ended_at,
       {_item_period("current_period_start", "list_min")} AS current_period_start,
       {_item_period("current_period_end", "list_max")} AS current_period_end,
       js(j, '$.cancellation_details.reason') AS cancellation_reason,
       js(j, '$.cancellation_details.feedback') AS cancellation_feedback,
       js(j, '$.cancellation_details.comment') AS cancellation_comment, j AS raw
FROM {{table}} ORDER BY id
"""

_INVOICE_SUBSCRIPTION = (
    "py_or(oid(j, '$.subscription'), oid(j, '$.parent.subscription_details.subscription'))"
)

_INVOICES_SQL = f"""
SELECT id, oid(j, '$.customer') AS customer, {_INVOICE_SUBSCRIPTION} AS subscription,
       js(j, '$.status') AS status, lower(js(j, '$.currency')) AS currency,
       ts(j, '$.created') AS created, ts(j, '$.period_start') AS period_start,
       ts(j, '$.period_end') AS period_end, js(j, '$.amount_due')::BIGINT AS amount_due,
       js(j, '$.amount_paid')::BIGINT AS amount_paid,
       js(j, '$.attempt_count')::BIGINT AS attempt_count,
       js(j, '$.billing_reason') AS billing_reason, j AS raw
FROM {{table}} ORDER BY id
"""

# Each invoice's lines in order: the embedded list, or, when it is cut short, the
# embedded lines with an id followed by the rest from invoice_lines.jsonl (a line in
# both takes the file's copy, at the embedded place).
_LINE_SOURCES_SQL = """
CREATE OR REPLACE TEMP TABLE embedded AS
SELECT invoice_id, inv_j, short, unnest(ls) AS l, unnest(range(len(ls))) AS pos
FROM (SELECT id AS invoice_id, j AS inv_j, short, json_extract(j, '$.lines.data[*]') AS ls
      FROM inv);
CREATE OR REPLACE TEMP TABLE line_src AS
SELECT invoice_id, inv_j, 0 AS part, pos, l, false AS from_file, inv_j AS src_text
FROM embedded WHERE NOT short
UNION ALL
SELECT coalesce(e.invoice_id, x.owner), inv.j,
       CASE WHEN e.line_id IS NULL THEN 1 ELSE 0 END,
       coalesce(e.first_pos, x.first_no), coalesce(x.j, e.l), x.j IS NOT NULL,
       coalesce(x.j, inv.j)
FROM (
    SELECT invoice_id, js(l, '$.id') AS line_id, min(pos) AS first_pos, arg_max(l, pos) AS l
    FROM embedded
    WHERE short AND coalesce(js(l, '$.id'), '') <> ''
    GROUP BY ALL
) AS e
FULL JOIN (SELECT * FROM extra WHERE owner IN (SELECT id FROM inv)) AS x
    ON e.invoice_id = x.owner AND e.line_id = x.line_id
JOIN inv ON inv.id = coalesce(e.invoice_id, x.owner)
WHERE inv.short;
"""

# line_facts() and the price resolution of the per-object path, column by column.
_LINE_FACTS_SQL = """
CREATE OR REPLACE TEMP TABLE line_facts AS
WITH parented AS (
    SELECT *, js(l, '$.parent.type') AS kind,
           CASE WHEN jt(l, '$.price') <> 'NULL' THEN json_extract(l, '$.price')
                ELSE json_extract(l, '$.pricing.price_details.price') END AS price_value
    FROM {table}
), detailed AS (
    SELECT *,
           CASE WHEN kind = 'subscription_item_details'
                THEN json_extract(l, '$.parent.subscription_item_details')
                WHEN kind = 'invoice_item_details'
                THEN json_extract(l, '$.parent.invoice_item_details')
                WHEN full_obj(l, '$.parent.subscription_item_details')
                THEN json_extract(l, '$.parent.subscription_item_details')
                WHEN full_obj(l, '$.parent.invoice_item_details')
                THEN json_extract(l, '$.parent.invoice_item_details') END AS details,
           CASE WHEN json_type(price_value) = 'OBJECT' THEN price_value END AS own_price,
           oid(price_value, '$') AS price_id
    FROM parented
), facts AS (
    SELECT d.*,
           py_or(oid(l, '$.subscription_item'), oid(details, '$.subscription_item'))
               AS subscription_item,
           py_or(py_or(oid(l, '$.subscription'), oid(details, '$.subscription')),
                 py_or(oid(inv_j, '$.subscription'),
                       oid(inv_j, '$.parent.subscription_details.subscription')))
               AS subscription,
           oid(CASE WHEN jt(l, '$.pricing.price_details.product') <> 'NULL'
                    THEN json_extract(l, '$.pricing.price_details.product')
                    ELSE json_extract(own_price, '$.product') END, '$') AS product,
           coalesce(CASE WHEN jt(l, '$.proration') <> 'NULL' THEN is_true(l, '$.proration')
                         ELSE is_true(details, '$.proration') END, false) AS proration,
           CASE WHEN full_obj(own_price, '$') THEN own_price ELSE m.j END AS price
    FROM detailed AS d
    LEFT JOIN price_map AS m ON NOT full_obj(d.own_price, '$') AND m.id = d.price_id
)
SELECT *,
       coalesce(kind = 'subscription_item_details', false)
       OR coalesce(js(l, '$.type') = 'subscription', false)
       OR (kind IS NULL AND coalesce(subscription_item, '') <> '') AS is_subscription_item
FROM facts
"""

_INVOICE_LINES_SQL = """
SELECT invoice_id, js(l, '$.id') AS line_id, subscription, subscription_item, price_id,
       py_or(js(price, '$.type'), CASE WHEN full_obj(price, '$.recurring') THEN 'recurring' END)
           AS price_type,
       product,
       lower(py_or(py_or(js(price, '$.currency'), js(l, '$.currency')), js(inv_j, '$.currency')))
           AS currency,
       js(price, '$.unit_amount')::BIGINT AS unit_amount,
       js(price, '$.recurring.interval') AS recurring_interval,
       coalesce(nullif(js(price, '$.recurring.interval_count')::BIGINT, 0),
                CASE WHEN full_obj(price, '$.recurring') THEN 1 END) AS recurring_interval_count,
       js(l, '$.quantity')::BIGINT AS quantity, js(l, '$.amount')::BIGINT AS amount,
       coalesce(list_sum(list_transform(js(l, '$.discount_amounts[*].amount'),
                                        lambda x: coalesce(x::BIGINT, 0))), 0) AS discount_amount,
       ts(l, '$.period.start') AS period_start, ts(l, '$.period.end') AS period_end,
       proration,
       CASE WHEN price_id IS NOT NULL AND price IS NULL
            THEN 'invoice ' || invoice_id || ' line ' || js(l, '$.id') || ': price ' || price_id
                 || ' is in no price list (/v1/prices, prices.jsonl)'
            WHEN coalesce(js(price, '$.recurring.interval'), '') <> '' THEN NULL
            WHEN coalesce(subscription, '') <> ''
                 AND NOT (coalesce(js(price, '$.type') = 'one_time', false)
                          AND NOT is_subscription_item)
            THEN 'invoice ' || invoice_id || ' line ' || js(l, '$.id') || ': claims subscription '
                 || subscription || ' but has no recurring interval'
       END AS line_problem,
       raw
FROM {table} ORDER BY invoice_id, part, pos
"""

_CHARGES_SQL = """
SELECT id, oid(j, '$.customer') AS customer, oid(j, '$.invoice') AS invoice,
       js(j, '$.amount')::BIGINT AS amount, lower(js(j, '$.currency')) AS currency,
       ts(j, '$.created') AS created, js(j, '$.status') AS status,
       js(j, '$.failure_code') AS failure_code, j AS raw
FROM {table} ORDER BY id
"""
