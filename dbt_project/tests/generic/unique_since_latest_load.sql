{#- No value of the latest load's rows appears twice in the whole table: the latest load's
    values are checked against every row, old and new. Earlier values were checked the
    night they were loaded, so on a table that only grows by loads whose key the loader and
    the incremental models replace (never append beside), this is `unique` at a night's
    cost instead of the whole history's.

    When the latest load is most of the table (a first load, a rebuild) the whole table is
    checked instead (`whole_table_repeats`): DuckDB spills a grouping to disk, but not the
    lookup of the latest values, which at 124M first-load rows ran out of 8 GB. -#}
{% test unique_since_latest_load(model, column_name, loaded_at_column) %}
with loads as (  -- one scan: a table holds a few hundred loads, not millions
    select {{ loaded_at_column }} as loaded_at, count(*) as load_rows
    from {{ model }}
    group by {{ loaded_at_column }}
),

latest as (
    select max(loaded_at) as latest_loaded_at from loads
),

mode as (
    select coalesce(
        2 * max(case when loads.loaded_at = latest.latest_loaded_at then load_rows end)
            > sum(load_rows),
        false
    ) as whole_table
    from loads cross join latest
),

latest_values as (
    select {{ column_name }} as value
    from {{ model }} cross join latest cross join mode
    where {{ loaded_at_column }} = latest.latest_loaded_at and not mode.whole_table
)

{{ whole_table_repeats(model, column_name) }}

union all

select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} in (select value from latest_values)
group by {{ column_name }}
having count(*) > 1
{% endtest %}
