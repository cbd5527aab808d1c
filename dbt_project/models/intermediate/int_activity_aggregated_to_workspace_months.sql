{{
    config(
        materialized='incremental',
        unique_key='month_start',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Activity per workspace and calendar month (UTC) from the daily activity: user-days,
-- distinct active users and distinct active days (docs/metrics.md, Engagement).
-- Incremental: a month is recomputed whole from its days whenever the daily model rewrote
-- one of them since the last run, so it equals a full refresh on the same inputs.
select
    {{ month_of('activity_date') }} as month_start,
    workspace_id,
    cast(count(*) as bigint) as user_days,
    cast(count(distinct user_id) as bigint) as active_users,
    cast(count(distinct activity_date) as bigint) as active_days,
    max(last_loaded_at) as last_loaded_at
from {{ ref('int_activity_aggregated_to_daily_users') }}
where {{ in_activity_months_touched('activity_date') }}
group by {{ month_of('activity_date') }}, workspace_id
