{#- Stop the build when an invoice line that needs converting has no exchange rate,
    naming every missing currency and month (docs/metrics.md, Money: MRR).

    Used as a post-hook of the model that joins the rates: the database itself
    raises, so the check runs on what was just built, on both engines. -#}
{% macro assert_fx_rates_found(relation) -%}
    {{ return(adapter.dispatch('assert_fx_rates_found', 'churnhouse')(relation)) }}
{%- endmacro %}

{% macro _missing_fx_rates_sql(relation) -%}
    select
        'no FX rate for ' || string_agg(
            'currency ' || currency || ' month ' || rate_month
            || ' (' || cast(lines as varchar) || ' invoice line(s), e.g. ' || example_line || ')',
            '; ' order by currency, rate_month
        ) || ' in the rates file (raw.fx_rates): add the rate and rerun' as message
    from (
        select currency, rate_month, count(*) as lines, min(invoice_id || '/' || line_id) as example_line
        from {{ relation }}
        where rate_to_usd is null
        group by currency, rate_month
    ) as missing
    having count(*) > 0
{%- endmacro %}

{% macro default__assert_fx_rates_found(relation) -%}
    select error(message) from ({{ _missing_fx_rates_sql(relation) }}) as failures
{%- endmacro %}

{% macro postgres__assert_fx_rates_found(relation) -%}
    do $check$
    declare failure text;
    begin
        select message into failure from ({{ _missing_fx_rates_sql(relation) }}) as failures;
        if failure is not null then
            raise exception '%', failure;
        end if;
    end
    $check$
{%- endmacro %}
