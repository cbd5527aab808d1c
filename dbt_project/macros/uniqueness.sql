{#- Every value of `column_name` held more than once (a null too), with its count, when
    mode.whole_table holds. -#}
{% macro whole_table_repeats(model, column_name) -%}
    {{ return(adapter.dispatch('whole_table_repeats', 'churnhouse')(model, column_name)) }}
{%- endmacro %}

{% macro default__whole_table_repeats(model, column_name) -%}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }} cross join mode
where mode.whole_table
group by {{ column_name }}
having count(*) > 1
{%- endmacro %}

{#- PostgreSQL groups 12M text keys by hashing them into batches on disk (17 s at 10,000
    customers x 24 months). Sorting their 64-bit hashes is about twice as quick; the few
    hashes met twice (equal values, two nulls, or a collision) are then checked on the
    values, in a second scan that runs only when there is one (nearly never). -#}
{% macro postgres__whole_table_repeats(model, column_name) -%}
{%- set value_hash = 'coalesce(hashtextextended(cast(' ~ column_name ~ ' as text), 0), 0)' -%}
{#- `(select whole_table from mode)`: evaluated once, not per row -#}
{%- set repeated_hashes = hashes_met_twice(value_hash, model, '(select whole_table from mode)') -%}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where (select whole_table from mode)
  and exists ({{ repeated_hashes }})  -- evaluated once: no repeated hash, no second scan
  and {{ value_hash }} in ({{ repeated_hashes }})
group by {{ column_name }}
having count(*) > 1
{%- endmacro %}


{#- Every combination of `columns` held more than once among the rows where `checked_rows`
    holds, with its count (the grain test's body; `checked_rows` may read its CTEs). -#}
{% macro combination_repeats(model, columns, checked_rows) -%}
    {{ return(adapter.dispatch('combination_repeats', 'churnhouse')(model, columns, checked_rows)) }}
{%- endmacro %}

{% macro default__combination_repeats(model, columns, checked_rows) -%}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
where {{ checked_rows }}
group by {{ columns | join(', ') }}
having count(*) > 1
{%- endmacro %}

{#- PostgreSQL: as whole_table_repeats, the rows' 64-bit hashes are sorted, and only the
    combinations whose hash repeats are grouped on their values (9.0 s against 5.2 s for
    the daily activity's 4.7M rows at 10,000 customers x 24 months). -#}
{% macro postgres__combination_repeats(model, columns, checked_rows) -%}
{%- set combination_hash = 'hash_record_extended(row(' ~ columns | join(', ') ~ '), 0)' -%}
{%- set repeated_hashes = hashes_met_twice(combination_hash, model, checked_rows) -%}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
where exists ({{ repeated_hashes }})  -- evaluated once: no repeated hash, no second scan
  and {{ checked_rows }}
  and {{ combination_hash }} in ({{ repeated_hashes }})
group by {{ columns | join(', ') }}
having count(*) > 1
{%- endmacro %}

{#- The values of `value_hash` met more than once among `model`'s rows where `condition`
    holds: one sort of 64-bit hashes, no grouping of the values themselves. -#}
{% macro hashes_met_twice(value_hash, model, condition) -%}
    select value_hash
    from (
        select value_hash, lag(value_hash) over (order by value_hash) as previous_hash
        from (
            select {{ value_hash }} as value_hash
            from {{ model }}
            where {{ condition }}
        ) as hashed
    ) as ordered
    where value_hash = previous_hash
{%- endmacro %}
