{#- Models rebuilt per customer (the MRR timeline, the month facts and the reasons):
    a night recomputes only the customers whose inputs changed since the model was last
    built, whenever the change happened (a restated invoice of last year, a late survey, an
    FX rate corrected, a CRM account moved to another segment).

    `int_customer_mrr_fingerprints` (kinds mrr_lines, mrr_months) and
    `int_customer_reason_fingerprints` (kind reasons) hold, per customer and kind of model,
    a fingerprint of every row the model reads for that customer. Each such model records the fingerprints
    it was built from in the table `customer_fingerprints_built` beside them (post-hook,
    in the model's own transaction; the hooks create it), and on its next run
      - deletes the rows of customers whose fingerprint differs or who are gone (pre-hook),
      - computes those customers again and appends them (the model's SQL).
    An empty model (first build, or a crash emptied the unlogged table) recomputes everyone.
    The result equals a full refresh: tests/dbt/test_customer_incremental.py. -#}

{#- A 64-bit hash of a whole row (every column), as a number that sums without overflow;
    `seed` tells apart rows of different tables. -#}
{% macro row_hash(alias, seed) -%}
    {{ return(adapter.dispatch('row_hash', 'churnhouse')(alias, seed)) }}
{%- endmacro %}

{% macro default__row_hash(alias, seed) -%}
    cast(hash({{ alias }}, {{ seed }}) as hugeint)
{%- endmacro %}

{% macro postgres__row_hash(alias, seed) -%}
    cast(hash_record_extended({{ alias }}, {{ seed }}) as numeric)
{%- endmacro %}

{#- A group of rows' fingerprint, whatever their order: how many, and the sum of their
    hashes. A change goes unseen only when the sum comes out the same, about once in
    10^19 (md5 of the sorted rows as JSON was 30 times slower on DuckDB). -#}
{% macro rows_fingerprint(hash_column) -%}
    concat(cast(count(*) as {{ dbt.type_string() }}), ':', cast(sum({{ hash_column }}) as {{ dbt.type_string() }}))
{%- endmacro %}

{#- The model holding a kind's fingerprints (`<kind>_fingerprint`), a relation. -#}
{% macro fingerprints_of(kind) -%}
    {%- if kind == 'reasons' -%}
    {{ return(ref('int_customer_reason_fingerprints')) }}
    {%- else -%}
    {{ return(ref('int_customer_mrr_fingerprints')) }}
    {%- endif -%}
{%- endmacro %}

{#- What a model records and compares: the customer's fingerprint with the model's own SQL
    (its file's checksum) and the macros and dbt_project.yml (a checksum churnhouse puts
    in CHURN_DBT_SHARED_CODE), so that changed code computes everyone again. Read only
    when models run, as CHURN_AS_OF (macros/as_of.sql). -#}
{% macro model_fingerprint(kind) -%}
    {%- set shared_code = env_var('CHURN_DBT_SHARED_CODE', '') if execute else '' -%}
    md5(concat(fingerprints.{{ kind }}_fingerprint, '{{ model.checksum.checksum }}{{ shared_code }}'))
{%- endmacro %}

{#- The record of what each per-customer model was built from: one row per model
    (relation_name: schema.table) and customer. Not a dbt model (a node costs a night
    ~0.1 s): the hooks create it. Emptied (a crash of the unlogged tables on
    PostgreSQL), every model computes everyone again. -#}
{% macro fingerprints_built(kind) -%}
    {{ fingerprints_of(kind).incorporate(path={'identifier': 'customer_fingerprints_built'}) }}
{%- endmacro %}

{#- Unlogged on PostgreSQL, like every intermediate table. -#}
{% macro create_fingerprints_built(kind) -%}
    create {{ 'unlogged ' if target.type == 'postgres' }}table if not exists {{ fingerprints_built(kind) }} (
        relation_name {{ dbt.type_string() }},
        customer_key {{ dbt.type_string() }},
        fingerprint {{ dbt.type_string() }}
    )
{%- endmacro %}

{% macro fingerprints_built_relation_name() -%}
    '{{ this.schema }}.{{ this.identifier }}'
{%- endmacro %}

{#- The customers this model computes again tonight: fingerprint differs from the one it
    was built from, or the model holds no row at all. -#}
{% macro changed_customers(kind) -%}
    (
        select fingerprints.customer_key
        from {{ fingerprints_of(kind) }} as fingerprints
        left join {{ fingerprints_built(kind) }} as built
            on built.relation_name = {{ fingerprints_built_relation_name() }}
           and built.customer_key = fingerprints.customer_key
        where fingerprints.{{ kind }}_fingerprint is not null
          and (
              built.fingerprint is distinct from {{ model_fingerprint(kind) }}
              or not exists (select 1 from {{ this }})
          )
    )
{%- endmacro %}

{#- pre-hook: the rows of changed customers, of customers with nothing left to read, and
    with `month_column`, of months no longer reported (a night re-run for an earlier day). -#}
{% macro delete_changed_customers(kind, month_column=none) -%}
    {%- if is_incremental() -%}
    {{ create_fingerprints_built(kind) }};
    delete from {{ this }}
    where customer_key in {{ changed_customers(kind) }}
       or customer_key not in (
           select customer_key
           from {{ fingerprints_of(kind) }}
           where {{ kind }}_fingerprint is not null
       )
       {%- if month_column %}
       or {{ month_column }} not in (select month_start from {{ ref('int_reporting_months') }})
       {%- endif %}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- post-hook: what the model now holds was built from these fingerprints. -#}
{% macro record_customer_fingerprints(kind) -%}
    {{ create_fingerprints_built(kind) }};
    delete from {{ fingerprints_built(kind) }}
    where relation_name = {{ fingerprints_built_relation_name() }};
    insert into {{ fingerprints_built(kind) }} (relation_name, customer_key, fingerprint)
    select {{ fingerprints_built_relation_name() }}, fingerprints.customer_key, {{ model_fingerprint(kind) }}
    from {{ fingerprints_of(kind) }} as fingerprints
    where fingerprints.{{ kind }}_fingerprint is not null
{%- endmacro %}

{#- The filter of a per-customer model's rows: everyone on a full build. -#}
{% macro is_changed_customer(kind, customer_key_column='customer_key') -%}
    {%- if is_incremental() -%}
    {{ customer_key_column }} in {{ changed_customers(kind) }}
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- The config every per-customer model shares, and the models its hooks read (refs
    inside hooks and inside `is_incremental()` are not seen when dbt parses). -#}
{% macro per_customer_config(kind, month_column=none) -%}
-- depends_on: {{ fingerprints_of(kind) }}
{% if month_column %}-- depends_on: {{ ref('int_reporting_months') }}{% endif %}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_changed_customers(%r, %r) }}" | format(kind, month_column),
        post_hook="{{ record_customer_fingerprints(%r) }}" | format(kind),
    ) }}
{%- endmacro %}
