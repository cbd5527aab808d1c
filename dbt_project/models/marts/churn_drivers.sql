-- Problem priority (docs/metrics.md, Churn drivers): per quarter of churned_at
-- ('YYYY-Qn') and over all churns ('all'), per primary reason category:
--   frequency = churn_share = churns of the category / churns of the period;
--   severity  = churned_mrr_share x influenceable_share (the money lost that the
--               company could have kept);
--   priority_score = frequency x severity; priority_rank 1 = fix first (ties: more
--   churned MRR first, then category name).
with churns as (
    select
        events.reason_category,
        events.is_influenceable,
        events.tenure_days,
        exact.mrr_lost_usd,
        cast(cast(extract(year from events.churned_at) as integer) as varchar)
            || '-Q' || cast(cast(extract(quarter from events.churned_at) as integer) as varchar) as quarter
    from {{ ref('churn_events') }} as events
    inner join {{ ref('int_churns') }} as exact
        on exact.customer_key = events.customer_key
       and exact.churned_at = events.churned_at
),

periods as (
    select quarter as period, reason_category, is_influenceable, tenure_days, mrr_lost_usd from churns
    union all
    select 'all', reason_category, is_influenceable, tenure_days, mrr_lost_usd from churns
),

categories as (
    select
        period,
        reason_category,
        count(*) as churns,
        sum(mrr_lost_usd) as churned_mrr_usd,
        sum(tenure_days) as tenure_days_total,
        sum(case when is_influenceable then 1 else 0 end) as influenceable_churns
    from periods
    group by period, reason_category
),

shares as (
    select
        categories.*,
        cast(churns as double precision)
            / cast(sum(churns) over (partition by period) as double precision) as churn_share,
        {{ safe_rate('churned_mrr_usd', 'sum(churned_mrr_usd) over (partition by period)') }}
            as churned_mrr_share,
        cast(influenceable_churns as double precision) / cast(churns as double precision)
            as influenceable_share,
        cast(tenure_days_total as double precision) / cast(churns as double precision) as mean_tenure_days
    from categories
),

scored as (
    select *, churn_share * churned_mrr_share * influenceable_share as priority_score
    from shares
)

select
    period,
    reason_category,
    cast(churns as bigint) as churns,
    churn_share,
    {{ published_money('churned_mrr_usd') }} as churned_mrr,
    churned_mrr_share,
    mean_tenure_days,
    influenceable_share,
    priority_score,
    cast(row_number() over (
        partition by period
        order by coalesce(priority_score, 0) desc, churned_mrr_usd desc, reason_category
    ) as bigint) as priority_rank
from scored
