{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ no_nested_loops_if_postgres() }}",
    )
}}

-- Every activity call (track, page, screen: docs/metrics.md, Engagement) with the workspace
-- it counts for (docs/sources.md section 3): its own group id (top level or context), else
-- the workspace of the same user's latest `group` call at or before its timestamp (a user in
-- several workspaces counts for the latest). The user is user_id, or anonymous_id on a call
-- without one. A call that reaches no workspace keeps a null workspace_id: it counts for no
-- customer and is listed in identity_unmatched.
--
-- Linear in calls, not calls x group calls: a user's group calls and unassigned activity
-- go on one timeline (a group call sorts before activity at the same instant: "at or
-- before"); a running count of group calls tells each activity call which one it follows.
--
-- Incremental: only calls loaded after the last run can change anything, and only from
-- their own time on. For each user with such a call (of any kind), the calls from the
-- earliest of them on are recomputed, starting from the user's latest group call before
-- it; earlier calls keep their workspace. The result equals a full refresh on the same
-- inputs (tests/dbt/test_transform_runs.py).
--
-- `not materialized`: each use reads only the rows it needs (tonight's loads, the users
-- they touch); materialised once, every call held would be copied each night (16 s at
-- 10,000 customers x 24 months, against 1 s).
with events as not materialized (
    select
        message_id,
        event_type,
        event_name,
        user_id,
        anonymous_id,
        coalesce(user_id, anonymous_id) as user_key,
        workspace_id,
        event_at,
        event_date,
        loaded_at
    from {{ ref('stg_events__events') }}
    where event_type in ('track', 'page', 'screen', 'group')
),

{% if is_incremental() %}
new_loads as (
    select *
    from events
    where loaded_at > (
        select {{ events_watermark('loaded_at') }}
        from {{ this }}
    )
),

recomputed_users as (
    select user_key, min(event_at) as from_at
    from new_loads
    where user_key is not null
      and (event_type <> 'group' or workspace_id is not null)
    group by user_key
),

calls as (
    select events.*
    from events
    inner join recomputed_users
        on recomputed_users.user_key = events.user_key
       and events.event_at >= recomputed_users.from_at
    where events.event_type <> 'group'

    union

    select *
    from new_loads
    where event_type <> 'group'
),

user_group_calls as (
    select
        events.user_key,
        events.event_at,
        events.message_id,
        events.workspace_id,
        events.loaded_at,
        recomputed_users.from_at
    from events
    inner join recomputed_users on recomputed_users.user_key = events.user_key
    where events.event_type = 'group' and events.workspace_id is not null
),

group_calls as (
    select user_key, event_at, message_id, workspace_id, loaded_at
    from user_group_calls
    where event_at >= from_at

    union all

    select user_key, event_at, message_id, workspace_id, loaded_at
    from (
        select
            *,
            row_number() over (
                partition by user_key order by event_at desc, message_id desc
            ) as latest_first
        from user_group_calls
        where event_at < from_at
    ) as earlier
    where latest_first = 1
),
{% else %}
-- `not materialized`: read twice (calls with and without a workspace of their own), it is
-- two scans of raw rather than 12M wide rows written aside and read back (29 s against 19 s
-- on PostgreSQL, 12 s against 9 s on DuckDB at 10,000 x 24).
calls as not materialized (
    select * from events where event_type <> 'group'
),

group_calls as (
    select *
    from events
    where event_type = 'group' and workspace_id is not null and user_key is not null
),
{% endif %}

-- The calls that need a group call (no own workspace, a user to look up) travel through
-- the timeline with their columns, so no join back to the calls is needed (at 12M calls
-- that join by message_id was the model's largest cost on PostgreSQL).
timeline as (
    select
        user_key, event_at, 0 as kind, message_id, workspace_id, loaded_at,
        cast(null as {{ dbt.type_string() }}) as event_type,
        cast(null as {{ dbt.type_string() }}) as event_name,
        cast(null as {{ dbt.type_string() }}) as user_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        cast(null as date) as event_date
    from group_calls

    union all

    select
        user_key, event_at, 1, message_id, cast(null as {{ dbt.type_string() }}), loaded_at,
        event_type, event_name, user_id, anonymous_id, event_date
    from calls
    where workspace_id is null and user_key is not null
),

numbered as (
    select
        *,
        sum(1 - kind) over (
            partition by user_key order by event_at, kind, message_id
            rows between unbounded preceding and current row
        ) as group_number
    from timeline
),

latest_group as (
    select user_key, group_number, workspace_id, loaded_at
    from numbered
    where kind = 0
)

select
    message_id,
    event_type,
    event_name,
    user_id,
    anonymous_id,
    user_key,
    workspace_id,
    case when workspace_id is not null then 'own_group_id' end as workspace_rule,
    event_at,
    event_date,
    loaded_at,
    cast(null as timestamp) as group_call_loaded_at
from calls
where workspace_id is not null or user_key is null

union all

select
    activity.message_id,
    activity.event_type,
    activity.event_name,
    activity.user_id,
    activity.anonymous_id,
    activity.user_key,
    latest_group.workspace_id,
    case when latest_group.workspace_id is not null then 'group_call' end as workspace_rule,
    activity.event_at,
    activity.event_date,
    activity.loaded_at,
    latest_group.loaded_at as group_call_loaded_at
from numbered as activity
left join latest_group
    on latest_group.user_key = activity.user_key
   and latest_group.group_number = activity.group_number
where activity.kind = 1
