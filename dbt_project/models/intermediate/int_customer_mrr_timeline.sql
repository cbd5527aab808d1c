-- Each customer's MRR as a step function: one row per span between two consecutive
-- change points (a line starting or stopping), with the MRR that holds on [valid_from,
-- valid_to). Overlapping lines add up; a customer is active where mrr_usd > 0.
-- Per customer: a night computes again only the customers whose lines changed
-- (macros/customer_incremental.sql).
{{ per_customer_config('mrr_lines') }}

with lines as (
    select customer_key, covers_from, covers_to, monthly_amount_usd
    from {{ ref('int_invoice_lines_normalized_to_mrr') }}
    where {{ is_changed_customer('mrr_lines') }}
),

changes as (
    select customer_key, covers_from as changed_at, monthly_amount_usd as mrr_change
    from lines

    union all

    select customer_key, covers_to as changed_at, -monthly_amount_usd as mrr_change
    from lines
),

change_points as (
    select customer_key, changed_at, sum(mrr_change) as mrr_change
    from changes
    group by customer_key, changed_at
),

spans as (
    select
        customer_key,
        changed_at as valid_from,
        lead(changed_at) over (partition by customer_key order by changed_at) as valid_to,
        sum(mrr_change) over (
            partition by customer_key order by changed_at
            rows between unbounded preceding and current row
        ) as mrr_usd
    from change_points
)

select
    customer_key,
    valid_from,
    valid_to,
    cast(mrr_usd as decimal(38, 12)) as mrr_usd,
    mrr_usd > 0 as is_active
from spans
where valid_to is not null
