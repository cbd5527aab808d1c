{{
    config(
        materialized='incremental',
        unique_key='month_start',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Each user's active days in a workspace cut into half months (days 1-15, then 16 to the
-- month's end; UTC), one row each with the first and last active day: the health signals'
-- activity windows read these (int_customer_health_signals says why that is exact).
-- Incremental as int_activity_aggregated_to_workspace_months: a month is recomputed whole
-- whenever the daily model rewrote one of its days since the last run.
select
    month_start,
    workspace_id,
    user_id,
    cast(case
        when is_second_half then {{ dbt.dateadd('month', 1, 'month_start') }}
        else {{ dbt.dateadd('day', 15, 'month_start') }}
    end as date) as half_end,
    first_day,
    last_day,
    last_loaded_at
from (
    select
        {{ month_of('activity_date') }} as month_start,
        workspace_id,
        user_id,
        extract(day from activity_date) > 15 as is_second_half,
        min(activity_date) as first_day,
        max(activity_date) as last_day,
        max(last_loaded_at) as last_loaded_at
    from {{ ref('int_activity_aggregated_to_daily_users') }}
    where {{ in_activity_months_touched('activity_date') }}
    group by {{ month_of('activity_date') }}, workspace_id, user_id, extract(day from activity_date) > 15
) as halves
