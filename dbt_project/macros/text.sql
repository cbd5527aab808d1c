{#- Free text with e-mail addresses replaced, so that no published column carries one. -#}
{% macro mask_emails(expression) -%}
    regexp_replace({{ expression }}, '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}', '[email]', 'g')
{%- endmacro %}

{#- An e-mail address as the identity rules compare it: trimmed, lower-cased. -#}
{% macro normalized_email(expression) -%}
    nullif(lower(trim({{ expression }})), '')
{%- endmacro %}

{#- The reason category whose keywords occur first in the taxonomy's category order
    (case-insensitive substring), or null. `text` is an SQL expression. -#}
{% macro keyword_category(text) -%}
    (
        select taxonomy.category
        from {{ ref('reason_taxonomy') }} as taxonomy
        where taxonomy.kind = 'keyword'
          and strpos(lower({{ text }}), lower(taxonomy.value)) > 0
        order by taxonomy.category_rank, taxonomy.value
        limit 1
    )
{%- endmacro %}

{#- The category of a raw reason value (survey primary_reason, billing feedback), or null. -#}
{% macro raw_value_category(value) -%}
    (
        select taxonomy.category
        from {{ ref('reason_taxonomy') }} as taxonomy
        where taxonomy.kind = 'raw_value' and taxonomy.value = {{ value }}
    )
{%- endmacro %}
