{#- No row of the latest load has a null `column_name`. Earlier loads were checked the
    night they were loaded; on a table that only grows by loads (raw events: 12M rows at
    10,000 customers x 24 months) a night reads its own rows, not the whole history. -#}
{% test not_null_since_latest_load(model, column_name, loaded_at_column) %}
{{ latest_load_nulls(model, column_name, loaded_at_column) }}
{% endtest %}
