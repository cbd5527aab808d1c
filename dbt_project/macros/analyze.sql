{#- PostgreSQL plans a query from table statistics, and a table dbt has just built has
    none until autovacuum gets to it (a minute or more later): the next model's joins are
    then planned for a handful of rows, as nested loops over millions. So each table is
    analysed as soon as it is built. DuckDB keeps its statistics itself. -#}
{% macro analyze_if_postgres() %}
    {%- if target.type == 'postgres' and config.get('materialized') in ('table', 'incremental', 'snapshot') -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}

{#- PostgreSQL estimates the calls of a type (lower(type) on the staging view) at a handful
    of rows, and then joins the timeline to its group calls as a nested loop: a company of
    300 customers took over ten minutes for one model. For the rest of that model's
    transaction only (`set local`), it has to hash or merge instead. -#}
{% macro no_nested_loops_if_postgres() %}
    {%- if target.type == 'postgres' -%}
        set local enable_nestloop = off
    {%- endif -%}
{% endmacro %}
