{#- No value of the latest load's rows appears twice in the whole table: the latest load's
    values are checked against every row, old and new. Earlier values were checked the
    night they were loaded, so on a table that only grows by loads whose key the loader and
    the incremental models replace (never append beside), this is `unique` at a night's
    cost instead of the whole history's. A table rebuilt from one load is checked whole. -#}
{% test unique_since_latest_load(model, column_name, loaded_at_column) %}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} in (
    select {{ column_name }}
    from {{ model }}
    where {{ loaded_at_column }} = (select max({{ loaded_at_column }}) from {{ model }})
)
group by {{ column_name }}
having count(*) > 1
{% endtest %}
