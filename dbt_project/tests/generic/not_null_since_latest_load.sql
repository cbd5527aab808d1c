{#- No row of the latest load has a null `column_name`. Earlier loads were checked the
    night they were loaded; on a table that only grows by loads (raw events: 12M rows at
    10,000 customers x 24 months) a night reads its own rows, not the whole history. -#}
{% test not_null_since_latest_load(model, column_name, loaded_at_column) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
  and {{ loaded_at_column }} = (select max({{ loaded_at_column }}) from {{ model }})
{% endtest %}
