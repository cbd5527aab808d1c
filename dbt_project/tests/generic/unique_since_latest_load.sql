{#- No value of the latest load's rows appears twice in the whole table: the latest load's
    values are checked against every row, old and new. Earlier values were checked the
    night they were loaded, so on a table that only grows by loads whose key the loader and
    the incremental models replace (never append beside), this is `unique` at a night's
    cost instead of the whole history's.

    When the latest load is most of the table (a first load, a rebuild) the whole table is
    checked by one grouping instead: DuckDB spills a grouping to disk, but not the lookup of
    the latest values, which at 124M first-load rows ran out of 8 GB. -#}
{% test unique_since_latest_load(model, column_name, loaded_at_column) %}
with latest as (
    select max({{ loaded_at_column }}) as latest_loaded_at from {{ model }}
),

mode as (
    select 2 * count(*) filter (where {{ loaded_at_column }} = latest.latest_loaded_at) > count(*)
        as whole_table
    from {{ model }} cross join latest
),

latest_values as (
    select {{ column_name }} as value
    from {{ model }} cross join latest cross join mode
    where {{ loaded_at_column }} = latest.latest_loaded_at and not mode.whole_table
)

select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }} cross join mode
where mode.whole_table
group by {{ column_name }}
having count(*) > 1

union all

select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} in (select value from latest_values)
group by {{ column_name }}
having count(*) > 1
{% endtest %}
