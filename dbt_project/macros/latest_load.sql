{#- The rows of the latest load whose `column_name` is null
    (tests/generic/not_null_since_latest_load.sql). -#}
{% macro latest_load_nulls(model, column_name, loaded_at_column) -%}
    {{ return(adapter.dispatch('latest_load_nulls', 'churnhouse')(model, column_name, loaded_at_column)) }}
{%- endmacro %}

{#- DuckDB skips the row groups of older loads by their min/max load time. -#}
{% macro default__latest_load_nulls(model, column_name, loaded_at_column) -%}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
  and {{ loaded_at_column }} = (select max({{ loaded_at_column }}) from {{ model }})
{%- endmacro %}

{#- PostgreSQL has no such skipping: it reads every row for nulls, and a parallel scan would
    compute the latest load time first, a second whole scan. `materialized`: the time is
    looked up only when a null is found. -#}
{% macro postgres__latest_load_nulls(model, column_name, loaded_at_column) -%}
with nulls as materialized (
    select {{ column_name }}, {{ loaded_at_column }} as loaded_at
    from {{ model }}
    where {{ column_name }} is null
)

select {{ column_name }}
from nulls
where loaded_at = (select max({{ loaded_at_column }}) from {{ model }})
{%- endmacro %}
