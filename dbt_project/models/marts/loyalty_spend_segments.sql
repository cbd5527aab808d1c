-- The loyalty x spend matrix (docs/metrics.md, Loyalty x spend): per month's close,
-- the customers active at it by their latest NPS class before the close (promoter,
-- passive, detractor, or 'no answer') and their spend tier (seed spend_tiers, on MRR at
-- the close); every cell of the grid is listed, empty ones with 0 customers.
-- churn_rate_next_90d = customers of the cell that churn in [close, close + 90 days) /
-- customers of the cell; null while that window has not ended by as_of or the cell is empty.
with closes as (
    select
        months.customer_key,
        months.month_start,
        cast({{ dbt.dateadd('month', 1, 'months.month_start') }} as timestamp) as closed_at,
        months.mrr_end_usd
    from {{ ref('int_customer_mrr_months_classified') }} as months
    where months.is_active_at_end
),

latest_nps as (
    select
        closes.customer_key,
        closes.month_start,
        responses.nps_category,
        row_number() over (
            partition by closes.customer_key, closes.month_start
            order by responses.submitted_at desc, responses.response_id desc
        ) as recency
    from closes
    inner join {{ ref('int_nps_responses_resolved') }} as responses
        on responses.customer_key = closes.customer_key
       and responses.submitted_at < closes.closed_at
),

churned as (
    select distinct closes.customer_key, closes.month_start
    from closes
    inner join {{ ref('churn_events') }} as churns
        on churns.customer_key = closes.customer_key
       and churns.churned_at >= closes.closed_at
       and churns.churned_at < {{ dbt.dateadd('day', var('churn_horizon_days'), 'closes.closed_at') }}
),

placed as (
    select
        closes.month_start,
        coalesce(latest_nps.nps_category, 'no answer') as nps_class,
        tiers.spend_tier,
        closes.mrr_end_usd,
        churned.customer_key is not null as has_churned
    from closes
    inner join {{ ref('spend_tiers') }} as tiers
        on tiers.min_mrr <= closes.mrr_end_usd
       and (tiers.max_mrr is null or closes.mrr_end_usd < tiers.max_mrr)
    left join latest_nps
        on latest_nps.customer_key = closes.customer_key
       and latest_nps.month_start = closes.month_start
       and latest_nps.recency = 1
    left join churned
        on churned.customer_key = closes.customer_key
       and churned.month_start = closes.month_start
),

cells as (
    select
        month_start,
        nps_class,
        spend_tier,
        count(*) as customers,
        sum(mrr_end_usd) as mrr_usd,
        sum(case when has_churned then 1 else 0 end) as churned_customers
    from placed
    group by month_start, nps_class, spend_tier
),

grid as (
    select
        months.month_start,
        cast({{ dbt.dateadd('month', 1, 'months.month_start') }} as timestamp) as closed_at,
        actions.nps_class,
        actions.spend_tier,
        tiers.tier_rank,
        actions.suggested_action
    from {{ ref('int_reporting_months') }} as months
    cross join {{ ref('loyalty_spend_actions') }} as actions
    inner join {{ ref('spend_tiers') }} as tiers on tiers.spend_tier = actions.spend_tier
)

select
    grid.month_start as month,
    grid.nps_class,
    grid.spend_tier,
    cast(grid.tier_rank as integer) as tier_rank,
    cast(coalesce(cells.customers, 0) as bigint) as customers,
    {{ published_money('coalesce(cells.mrr_usd, 0)') }} as mrr,
    case
        when {{ dbt.dateadd('day', var('churn_horizon_days'), 'grid.closed_at') }} <= {{ as_of() }}
            then cast(cells.churned_customers as double precision)
                 / cast(nullif(cells.customers, 0) as double precision)
    end as churn_rate_next_90d,
    grid.suggested_action
from grid
left join cells
    on cells.month_start = grid.month_start
   and cells.nps_class = grid.nps_class
   and cells.spend_tier = grid.spend_tier
