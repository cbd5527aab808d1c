-- Logo and revenue churn per month, by segment x region and in total (segment = region =
-- 'all'), as metrics.md defines them. Sums are exact; money is rounded to the cent only
-- here, rates come from the unrounded sums and are null when their denominator is 0.
with customer_months as (
    select * from {{ ref('int_customer_mrr_months_classified') }}
),

grouped as (
    select
        month_start,
        segment,
        region,
        {{ _churn_monthly_sums() }}
    from customer_months
    group by month_start, segment, region

    union all

    select
        month_start,
        'all' as segment,
        'all' as region,
        {{ _churn_monthly_sums() }}
    from customer_months
    group by month_start
)

select
    month_start as month,
    segment,
    region,
    customers_start,
    new_customers,
    reactivated_customers,
    churned_customers,
    customers_end,
    {{ safe_rate('churned_customers', 'customers_start') }} as logo_churn_rate,
    {{ published_money('mrr_start') }} as mrr_start,
    {{ published_money('new_mrr') }} as new_mrr,
    {{ published_money('reactivation_mrr') }} as reactivation_mrr,
    {{ published_money('expansion_mrr') }} as expansion_mrr,
    {{ published_money('contraction_mrr') }} as contraction_mrr,
    {{ published_money('churned_mrr') }} as churned_mrr,
    {{ published_money('mrr_end') }} as mrr_end,
    {{ safe_rate('churned_mrr + contraction_mrr', 'mrr_start') }} as gross_revenue_churn_rate,
    {{ safe_rate('mrr_start + expansion_mrr - contraction_mrr - churned_mrr', 'mrr_start') }}
        as net_revenue_retention
from grouped
