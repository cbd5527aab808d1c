-- Product calls, one per message_id; `event_at` is the device time converted to UTC.
select
    message_id,
    lower(type) as event_type,
    event as event_name,
    user_id,
    group_id as workspace_id,
    event_at,
    cast(event_at as date) as event_date,
    received_at,
    _loaded_at as loaded_at
from {{ source('events', 'events') }}
