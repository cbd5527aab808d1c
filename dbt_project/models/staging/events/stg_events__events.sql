-- Product calls of every type, one per message_id; `event_at` is the device time converted
-- to UTC. `workspace_id` is the call's own group id (top level or context.groupId, both key
-- styles already read by the loader); which workspace an activity call counts for is decided
-- in int_activity_calls_assigned_to_workspaces.
select
    message_id,
    lower(type) as event_type,
    event as event_name,
    user_id,
    anonymous_id,
    group_id as workspace_id,
    event_at,
    cast(event_at as date) as event_date,
    received_at,
    _loaded_at as loaded_at
from {{ source('events', 'events') }}
