{#- No row of `model` has a null in any of `columns`. One scan for them all (dbt's
    not_null reads the table once per column, and a build runs each as a node of its
    own: ~15 ms of dbt per node on a quick table). Each failing row names the first of
    its columns that is null (`null_column`), with the columns' values. -#}
{% test not_null_columns(model, columns) %}
select
    case
    {%- for column in columns %}
        when {{ column }} is null then '{{ column }}'
    {%- endfor %}
    end as null_column,
    {{ columns | join(', ') }}
from {{ model }}
where {% for column in columns -%}
    {{ column }} is null{% if not loop.last %} or {% endif %}
{%- endfor %}
{% endtest %}
