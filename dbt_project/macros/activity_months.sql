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
            select {{ dbt.dateadd('minute', -var('events_load_overlap_minutes'), 'max(last_loaded_at)') }}
            from {{ this }}
        )
    )
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}
