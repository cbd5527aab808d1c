{#- No row of the latest load has a null `column_name`. Earlier loads were checked the
    night they were loaded; on a table that only grows by loads (raw events: 12M rows at
    10,000 customers x 24 months) a night reads its own rows, not the whole history.
    The latest load time is looked up only when a null is found (`materialized`: on
    PostgreSQL a parallel scan would compute it first, a second scan of the table). -#}
{% test not_null_since_latest_load(model, column_name, loaded_at_column) %}
with nulls as materialized (
    select {{ column_name }}, {{ loaded_at_column }} as loaded_at
    from {{ model }}
    where {{ column_name }} is null
)

select {{ column_name }}
from nulls
where loaded_at = (select max({{ loaded_at_column }}) from {{ model }})
{% endtest %}
