-- Cohort retention (docs/metrics.md, Cohorts): cohort = the month of a customer's
-- first active instant; for each cohort and month since (0, 1, 2, ... up to the last
-- month that ended by as_of): logo retention = cohort customers active at that month's
-- close / cohort customers; revenue retention = their MRR at that close / the cohort's
-- starting MRR (each member's MRR at its first active instant; can exceed 1). Month 0 is
-- the cohort as it started: every member, at its starting MRR (a member that stopped
-- again inside its first month still counts there). Every customer belongs to exactly
-- one cohort, whatever comes after (churn, comeback).
with classified as (
    select * from {{ ref('int_customer_mrr_months_classified') }}
),

starts as (
    select customers.customer_key, timeline.mrr_usd as starting_mrr_usd
    from (select distinct customer_key, first_active_at from classified) as customers
    inner join {{ ref('int_customer_mrr_timeline') }} as timeline
        on timeline.customer_key = customers.customer_key
       and timeline.valid_from = customers.first_active_at
),

months as (
    select
        classified.customer_key,
        {{ month_of('classified.first_active_at') }} as cohort_month,
        classified.month_start,
        classified.is_active_at_end,
        classified.mrr_end_usd,
        starts.starting_mrr_usd
    from classified
    inner join starts on starts.customer_key = classified.customer_key
),

cells as (
    select
        cohort_month,
        month_start,
        count(*) as cohort_customers,
        sum(case when month_start = cohort_month or is_active_at_end then 1 else 0 end)
            as customers_active,
        sum(case
            when month_start = cohort_month then starting_mrr_usd
            when is_active_at_end then mrr_end_usd
            else 0
        end) as mrr_usd
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
