-- A customer's active lives: maximal runs of spans with MRR > 0. Each ends at the instant
-- the customer goes from active to not active, which is a churn when it is at or before
-- as_of (docs/metrics.md, Churn events). A customer who comes back starts a new spell.
with timeline as (
    select
        *,
        case
            when is_active
             and not coalesce(lag(is_active) over (partition by customer_key order by valid_from), false)
            then 1 else 0
        end as starts_spell
    from {{ ref('int_customer_mrr_timeline') }}
),

numbered as (
    select
        *,
        sum(starts_spell) over (
            partition by customer_key order by valid_from
            rows between unbounded preceding and current row
        ) as spell_number_raw
    from timeline
),

spells as (
    select
        customer_key,
        cast(spell_number_raw as bigint) as spell_number,
        min(valid_from) as active_from,
        max(valid_to) as active_to
    from numbered
    where is_active
    group by customer_key, spell_number_raw
)

select
    spells.customer_key,
    spells.spell_number,
    spells.active_from,
    spells.active_to,
    last_span.mrr_usd as mrr_at_end_usd,
    min(spells.active_from) over (partition by spells.customer_key) as first_active_at,
    spells.active_to <= {{ as_of() }} as has_ended_by_as_of
from spells
inner join numbered as last_span
    on last_span.customer_key = spells.customer_key
   and last_span.valid_to = spells.active_to
   and last_span.is_active
