{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Activity per UTC day, workspace and user (docs/metrics.md, Engagement): track, page and
-- screen calls, already one row per message_id, on their device time converted to UTC, for
-- the workspace each is assigned (int_activity_calls_assigned_to_workspaces).
--
-- Incremental: events arrive late, by days, and a late `group` call can move a user's later
-- calls to another workspace. Each run recomputes, from every call held, the days touched by
-- the calls or the assigning group calls loaded since the last run (minus
-- `events_load_overlap_minutes`), and replaces those days whole (delete+insert by day: a row
-- whose call moved away is removed too), so it equals a full refresh on the same inputs. It
-- does not depend on as_of: the marts filter.
with activity as (
    select
        event_date,
        workspace_id,
        user_id,
        event_at,
        greatest(loaded_at, coalesce(group_call_loaded_at, loaded_at)) as loaded_at
    from {{ ref('int_activity_calls_assigned_to_workspaces') }}
    where workspace_id is not null
      and user_id is not null
)

{% if is_incremental() %}
, touched_days as (
    select distinct event_date
    from activity
    where loaded_at > (
        select {{ events_watermark('last_loaded_at') }}
        from {{ this }}
    )
)
{% endif %}

select
    activity.event_date as activity_date,
    activity.workspace_id,
    activity.user_id,
    cast(count(*) as bigint) as activity_calls,
    min(activity.event_at) as first_event_at,
    max(activity.event_at) as last_event_at,
    max(activity.loaded_at) as last_loaded_at
from activity
{% if is_incremental() %}
where activity.event_date in (select event_date from touched_days)
{% endif %}
group by activity.event_date, activity.workspace_id, activity.user_id
