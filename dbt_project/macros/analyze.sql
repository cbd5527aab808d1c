{#- PostgreSQL plans a query from table statistics, and a table dbt has just built has
    none until autovacuum gets to it (a minute or more later): the next model's joins are
    then planned for a handful of rows, as nested loops over millions. So each table is
    analysed as soon as it is built. DuckDB keeps its statistics itself. -#}
{% macro analyze_if_postgres() %}
    {%- if target.type == 'postgres' and config.get('materialized') in ('table', 'incremental', 'snapshot') -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
