{{
    config(
        materialized='incremental',
        unique_key=['activity_date', 'workspace_id', 'user_id'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Activity per UTC day, workspace and user (docs/metrics.md, Engagement): track calls only,
-- already one row per message_id, on their device time converted to UTC.
--
-- Incremental: events arrive late, by days. Each run recomputes, from every event held,
-- the days touched by the events loaded since the last run (minus a look-back for loads
-- that overlapped it), so it equals a full refresh on the same inputs. It does not depend
-- on as_of: the marts filter.
with tracks as (
    select event_date, workspace_id, user_id, event_at, loaded_at
    from {{ ref('stg_events__events') }}
    where event_type = 'track'
      and workspace_id is not null
      and user_id is not null
)

{% if is_incremental() %}
, touched_days as (
    select distinct event_date
    from tracks
    where loaded_at >= (
        select {{ dbt.dateadd('day', -var('events_lookback_days'), 'max(last_loaded_at)') }}
        from {{ this }}
    )
)
{% endif %}

select
    tracks.event_date as activity_date,
    tracks.workspace_id,
    tracks.user_id,
    cast(count(*) as bigint) as track_events,
    min(tracks.event_at) as first_event_at,
    max(tracks.event_at) as last_event_at,
    max(tracks.loaded_at) as last_loaded_at
from tracks
{% if is_incremental() %}
where tracks.event_date in (select event_date from touched_days)
{% endif %}
group by tracks.event_date, tracks.workspace_id, tracks.user_id
