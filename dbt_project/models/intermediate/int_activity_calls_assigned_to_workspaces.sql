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
with calls as (
    select
        message_id,
        event_type,
        event_name,
        user_id,
        anonymous_id,
        coalesce(user_id, anonymous_id) as user_key,
        workspace_id as own_workspace_id,
        event_at,
        event_date,
        loaded_at
    from {{ ref('stg_events__events') }}
    where event_type in ('track', 'page', 'screen')
),

timeline as (
    select
        coalesce(user_id, anonymous_id) as user_key,
        event_at,
        0 as kind,
        message_id,
        workspace_id,
        loaded_at
    from {{ ref('stg_events__events') }}
    where event_type = 'group'
      and workspace_id is not null
      and coalesce(user_id, anonymous_id) is not null

    union all

    select user_key, event_at, 1, message_id, cast(null as {{ dbt.type_string() }}), loaded_at
    from calls
    where own_workspace_id is null and user_key is not null
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

followed as (
    select
        activity.message_id,
        latest_group.workspace_id,
        latest_group.loaded_at as group_call_loaded_at
    from numbered as activity
    inner join numbered as latest_group
        on latest_group.user_key = activity.user_key
       and latest_group.group_number = activity.group_number
       and latest_group.kind = 0
    where activity.kind = 1
)

select
    calls.message_id,
    calls.event_type,
    calls.event_name,
    calls.user_id,
    calls.anonymous_id,
    calls.user_key,
    coalesce(calls.own_workspace_id, followed.workspace_id) as workspace_id,
    case
        when calls.own_workspace_id is not null then 'own_group_id'
        when followed.workspace_id is not null then 'group_call'
    end as workspace_rule,
    calls.event_at,
    calls.event_date,
    calls.loaded_at,
    followed.group_call_loaded_at
from calls
left join followed on followed.message_id = calls.message_id
