-- Cohort retention (dbt_project/README.md, Cohorts): cohort = the month of a customer's
-- first active instant; for each cohort and month since (0, 1, 2, ... up to the last
-- month that ended by as_of): logo retention = cohort customers active at that month's
-- close / cohort customers; revenue retention = their MRR at that close / the cohort's
-- MRR at the close of its first month (can exceed 1). Every customer belongs to exactly
-- one cohort, whatever comes after (churn, comeback).
with months as (
    select
        customer_key,
        {{ month_of('first_active_at') }} as cohort_month,
        month_start,
        is_active_at_end,
        mrr_end_usd
    from {{ ref('int_customer_mrr_months_classified') }}
),

cells as (
    select
        cohort_month,
        month_start,
        count(*) as cohort_customers,
        sum(case when is_active_at_end then 1 else 0 end) as customers_active,
        sum(case when is_active_at_end then mrr_end_usd else 0 end) as mrr_usd
    from months
    group by cohort_month, month_start
),

started as (
    select
        cells.*,
        first_month.mrr_usd as cohort_start_mrr_usd
    from cells
    inner join cells as first_month
        on first_month.cohort_month = cells.cohort_month
       and first_month.month_start = cells.cohort_month
)

select
    cohort_month,
    cast({{ dbt.datediff('cohort_month', 'month_start', 'month') }} as bigint) as months_since_start,
    month_start as month,
    cast(cohort_customers as bigint) as cohort_customers,
    cast(customers_active as bigint) as customers_active,
    cast(customers_active as double precision) / cast(cohort_customers as double precision)
        as logo_retention,
    {{ published_money('mrr_usd') }} as mrr,
    {{ published_money('cohort_start_mrr_usd') }} as cohort_start_mrr,
    {{ safe_rate('mrr_usd', 'cohort_start_mrr_usd') }} as revenue_retention
from started
