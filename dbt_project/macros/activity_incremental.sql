{#- For a model built from int_activity_aggregated_to_daily_users and replaced month by
    month (incremental, delete+insert by month_start): on an incremental run, the filter
    keeping the days of the months whose days that model rewrote since this model's last
    run (minus `events_load_overlap_minutes`). Every day it rewrites holds a row loaded
    since its own previous run, so these are all the months that can differ; a full build
    keeps every day. -#}
{% macro in_activity_months_touched(day_column) -%}
    {%- if is_incremental() -%}
    {{ month_of(day_column) }} in (
        select distinct {{ month_of('touched.activity_date') }}
        from {{ ref('int_activity_aggregated_to_daily_users') }} as touched
        where touched.last_loaded_at > (
            select {{ events_watermark('last_loaded_at') }}
            from {{ this }}
        )
    )
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}


{#- The load time an incremental activity model reads from on its next run: the latest
    `loaded_at_column` it holds, minus `events_load_overlap_minutes`; when it holds no row
    yet (no events before its first build), the beginning of time, so that the first
    events ever loaded are all taken. -#}
{% macro events_watermark(loaded_at_column) -%}
    coalesce(
        {{ dbt.dateadd('minute', -var('events_load_overlap_minutes'), 'max(' ~ loaded_at_column ~ ')') }},
        cast('1900-01-01 00:00:00' as timestamp)
    )
{%- endmacro %}
