-- Monthly rates to USD, exact decimals; currency codes compared lower-cased.
-- The rates file is optional for a company that bills in USD only: without raw.fx_rates
-- this is empty, and any non-USD line then stops the build naming its currency and month.
{%- set rates = source('billing', 'fx_rates') %}
{%- set loaded = adapter.get_relation(rates.database, rates.schema, rates.identifier) if execute else rates %}
{% if loaded is none %}
select
    cast(null as varchar) as currency,
    cast(null as varchar) as rate_month,
    cast(null as decimal(38, 12)) as rate_to_usd
where false
{% else %}
select
    lower(trim(currency)) as currency,
    trim(month) as rate_month,
    cast(trim(rate_to_usd) as decimal(38, 12)) as rate_to_usd
from {{ rates }}
{% endif %}
