{#- Whole seconds (with fraction) from `start` to `stop`, both TIMESTAMP. -#}
{% macro seconds_between(start, stop) -%}
    {{ return(adapter.dispatch('seconds_between', 'churnhouse')(start, stop)) }}
{%- endmacro %}

{% macro default__seconds_between(start, stop) -%}
    (epoch({{ stop }}) - epoch({{ start }}))
{%- endmacro %}

{% macro postgres__seconds_between(start, stop) -%}
    extract(epoch from ({{ stop }} - {{ start }}))
{%- endmacro %}

{#- First day of the calendar month (UTC) holding a timestamp, as a DATE. -#}
{% macro month_of(timestamp) -%}
    cast({{ dbt.date_trunc('month', timestamp) }} as date)
{%- endmacro %}

{#- First day of the half month (UTC) holding a timestamp, as a DATE: the 1st for days
    1-15, the 16th from then to the month's end. -#}
{% macro half_month_start(timestamp) -%}
    cast(case
        when extract(day from {{ timestamp }}) > 15 then {{ dbt.dateadd('day', 15, month_of(timestamp)) }}
        else {{ month_of(timestamp) }}
    end as date)
{%- endmacro %}

{#- One row per calendar month `month_start` (DATE) from `first_month` to `last_month`. -#}
{% macro month_series(first_month, last_month) -%}
    select cast(series.month_start as date) as month_start
    from generate_series(
        cast({{ first_month }} as timestamp),
        cast({{ last_month }} as timestamp),
        interval '1 month'
    ) as series (month_start)
{%- endmacro %}
