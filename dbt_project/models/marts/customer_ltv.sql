-- Customer lifetime value (docs/metrics.md, LTV) per CRM segment (at the close of
-- the previous month, as churn_monthly cuts) and month, plus segment 'all':
--   arpa = MRR at the month's close / customers active at it;
--   logo_churn_rate_12m = churned customers / customers at the start, both summed over
--     the 12 months ending with this one (fewer at the start of the history): the mean
--     monthly logo churn rate of the trailing year;
--   ltv = arpa / logo_churn_rate_12m (null when that rate is 0 or null);
--   realised_revenue_churned = mean over the customers that churned this month of their
--     realised lifetime revenue: the sum of their MRR at every month close before the
--     churn (all their lives).
with months as (
    select customer_key, month_start, segment, is_active_at_start, is_active_at_end,
           is_churned, mrr_start_usd, mrr_end_usd
    from {{ ref('int_customer_mrr_months_classified') }}
),

lifetime as (
    select
        churned.customer_key,
        churned.month_start,
        sum(history.mrr_start_usd) as realised_revenue_usd
    from months as churned
    inner join months as history
        on history.customer_key = churned.customer_key
       and history.month_start <= churned.month_start
    where churned.is_churned
    group by churned.customer_key, churned.month_start
),

segmented as (
    select months.*, lifetime.realised_revenue_usd from months
    left join lifetime
        on lifetime.customer_key = months.customer_key
       and lifetime.month_start = months.month_start
),

both_cuts as (
    select segment, month_start, is_active_at_start, is_active_at_end, is_churned, mrr_end_usd,
           realised_revenue_usd
    from segmented
    union all
    select 'all', month_start, is_active_at_start, is_active_at_end, is_churned, mrr_end_usd,
           realised_revenue_usd
    from segmented
),

monthly as (
    select
        segment,
        month_start,
        sum(case when is_active_at_start then 1 else 0 end) as customers_start,
        sum(case when is_active_at_end then 1 else 0 end) as customers_end,
        sum(case when is_churned then 1 else 0 end) as churned_customers,
        cast(sum(case when is_active_at_end then mrr_end_usd else 0 end) as decimal(38, 12)) as mrr_end_usd,
        cast(sum(case when is_churned then realised_revenue_usd else 0 end) as decimal(38, 12))
            as realised_revenue_usd
    from both_cuts
    group by segment, month_start
),

windowed as (
    select
        monthly.*,
        (
            select sum(window_months.churned_customers)
            from monthly as window_months
            where window_months.segment = monthly.segment
              and window_months.month_start <= monthly.month_start
              and window_months.month_start > {{ dbt.dateadd('month', -12, 'monthly.month_start') }}
        ) as churned_12m,
        (
            select sum(window_months.customers_start)
            from monthly as window_months
            where window_months.segment = monthly.segment
              and window_months.month_start <= monthly.month_start
              and window_months.month_start > {{ dbt.dateadd('month', -12, 'monthly.month_start') }}
        ) as customers_start_12m
    from monthly
)

select
    month_start as month,
    segment,
    cast(customers_end as bigint) as customers,
    {{ published_money('mrr_end_usd') }} as mrr,
    case when customers_end > 0 then
        {{ published_money(exact_divide('mrr_end_usd', 'customers_end')) }}
    end as arpa,
    cast(churned_12m as bigint) as churned_customers_12m,
    cast(customers_start_12m as bigint) as customers_start_12m,
    cast(churned_12m as double precision) / cast(nullif(customers_start_12m, 0) as double precision)
        as logo_churn_rate_12m,
    case when customers_end > 0 and churned_12m > 0 then
        {{ published_money(exact_divide(
            'mrr_end_usd * customers_start_12m', 'customers_end * churned_12m'
        )) }}
    end as ltv,
    cast(churned_customers as bigint) as churned_customers,
    case when churned_customers > 0 then
        {{ published_money(exact_divide('realised_revenue_usd', 'churned_customers')) }}
    end as realised_revenue_churned
from windowed
