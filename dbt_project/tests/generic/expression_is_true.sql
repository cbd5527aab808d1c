{#- Every row (optionally only those matching `where_clause`) satisfies `expression`;
    an expression that is null fails. -#}
{% test expression_is_true(model, expression, where_clause=none, column_name=none) %}
select *
from {{ model }}
where not coalesce({{ expression }}, false)
{%- if where_clause %} and ({{ where_clause }}){% endif %}
{% endtest %}
