-- How much to trust the at-risk list: one row per month's close. The customers flagged
-- high at the close, set against the customers that churned (churn_events) in the
-- churn_horizon_days (default 90) days from the close: [close, close + 90 days). Outcome
-- columns are null while that window has not ended by as_of (is_complete false).
with health as (
    select month, evaluated_at, customer_key, risk_level = 'high' as is_flagged, mrr_now_usd
    from {{ ref('int_customer_health_scored') }}
    where month is not null
),

churned as (
    select distinct health.customer_key, health.evaluated_at
    from health
    inner join {{ ref('churn_events') }} as churns
        on churns.customer_key = health.customer_key
       and churns.churned_at >= health.evaluated_at
       and churns.churned_at < {{ dbt.dateadd('day', var('churn_horizon_days'), 'health.evaluated_at') }}
),

outcomes as (
    select
        health.*,
        churned.customer_key is not null as has_churned,
        {{ dbt.dateadd('day', var('churn_horizon_days'), 'health.evaluated_at') }} <= {{ as_of() }}
            as is_complete
    from health
    left join churned
        on churned.customer_key = health.customer_key
       and churned.evaluated_at = health.evaluated_at
),

counts as (
    select
        month,
        max(case when is_complete then 1 else 0 end) = 1 as is_complete,
        count(*) as active_customers,
        sum(case when is_flagged then 1 else 0 end) as flagged_customers,
        sum(case when has_churned then 1 else 0 end) as churned_customers,
        sum(case when has_churned and is_flagged then 1 else 0 end) as churned_flagged,
        sum(case when has_churned and not is_flagged then 1 else 0 end) as churned_not_flagged,
        sum(case when has_churned then mrr_now_usd else 0 end) as churned_mrr_usd,
        sum(case when has_churned and is_flagged then mrr_now_usd else 0 end) as flagged_churned_mrr_usd
    from outcomes
    group by month
),

rates as (
    select
        *,
        cast(churned_flagged as double precision) / cast(nullif(flagged_customers, 0) as double precision)
            as precision_rate,
        cast(churned_flagged as double precision) / cast(nullif(churned_customers, 0) as double precision)
            as recall_rate,
        cast(churned_customers as double precision) / cast(nullif(active_customers, 0) as double precision)
            as base_churn_rate
    from counts
)

select
    month,
    is_complete,
    cast(active_customers as bigint) as active_customers,
    cast(flagged_customers as bigint) as flagged_customers,
    cast(case when is_complete then churned_customers end as bigint) as churned_customers,
    cast(case when is_complete then churned_flagged end as bigint) as churned_flagged,
    cast(case when is_complete then churned_not_flagged end as bigint) as churned_not_flagged,
    case when is_complete then precision_rate end as precision_rate,
    case when is_complete then recall_rate end as recall_rate,
    case when is_complete then base_churn_rate end as base_churn_rate,
    case when is_complete then precision_rate / nullif(base_churn_rate, 0) end as lift,
    case when is_complete then {{ safe_rate('flagged_churned_mrr_usd', 'churned_mrr_usd') }} end
        as flagged_churned_mrr_share
from rates
