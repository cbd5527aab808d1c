-- The calendar months (UTC) the marts report: from the month of the first active
-- instant or survey response to the last month that ended by as_of.
with firsts as (
    select min(first_active_at) as first_at from {{ ref('int_customer_active_spells') }}
    union all
    select min(submitted_at) from {{ ref('stg_surveys__nps_responses') }}
    union all
    select min(submitted_at) from {{ ref('stg_surveys__cancellation_responses') }}
),

months as (
    {{ month_series(
        "(select " ~ month_of('min(first_at)') ~ " from firsts)",
        dbt.dateadd('month', -1, month_of(as_of()))
    ) }}
)

select
    month_start,
    cast({{ dbt.dateadd('month', 1, 'month_start') }} as date) as month_end
from months
