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
    {{ month_of('half_start') }} as month_start,
    workspace_id,
    user_id,
    {{ half_month_start(dbt.dateadd('day', 16, 'half_start')) }} as half_end,  -- the next half's start
    first_day,
    last_day,
    last_loaded_at
from (
    select
        {{ half_month_start('activity_date') }} as half_start,
        workspace_id,
        user_id,
        min(activity_date) as first_day,
        max(activity_date) as last_day,
        max(last_loaded_at) as last_loaded_at
    from {{ ref('int_activity_aggregated_to_daily_users') }}
    where {{ in_activity_months_touched('activity_date') }}
    group by {{ half_month_start('activity_date') }}, workspace_id, user_id
) as halves
