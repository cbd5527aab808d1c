-- One row per customer with MRR lines: a fingerprint of every row each kind of per-customer
-- MRR model reads for that customer (macros/customer_incremental.sql). Equal fingerprint,
-- equal inputs: the model's rows for that customer stay as they are tonight.
--   mrr_lines  - the MRR timeline: the customer's MRR lines (each already carries its
--                rate, its cut at the subscription's end and its period up to as_of);
--   mrr_months - the month facts: those lines, the customer's CRM account and every
--                version of it (segment and region at each month close).
-- Months that close add a row for every customer without changing a fingerprint: the
-- month models add them on their own.
with line_rows as (
    select lines.customer_key, {{ row_hash('lines', 1) }} as row_hash
    from {{ ref('int_invoice_lines_normalized_to_mrr') }} as lines
),

mrr_lines as (
    select customer_key, {{ rows_fingerprint('row_hash') }} as fingerprint
    from line_rows
    group by customer_key
),

account_rows as (
    select
        customers.customer_key,
        {{ row_hash('customers', 2) }} + coalesce({{ row_hash('versions', 3) }}, 0) as row_hash
    from (
        select distinct customer_key, crm_account_id
        from {{ ref('int_billing_customers_resolved') }}
    ) as customers
    left join {{ ref('int_accounts_historized') }} as versions
        on versions.account_id = customers.crm_account_id
),

accounts as (
    select customer_key, {{ rows_fingerprint('row_hash') }} as fingerprint
    from account_rows
    group by customer_key
)

select
    mrr_lines.customer_key,
    mrr_lines.fingerprint as mrr_lines_fingerprint,
    concat(mrr_lines.fingerprint, '|', coalesce(accounts.fingerprint, '')) as mrr_months_fingerprint
from mrr_lines
left join accounts on accounts.customer_key = mrr_lines.customer_key
