{#- Layers land in the schema their config names (staging, intermediate, analytics, ...),
    not in "<target schema>_<name>": the published schema's name is part of the interface. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
