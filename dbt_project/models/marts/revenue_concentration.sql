-- Revenue concentration, the 80/20 view (docs/metrics.md, Concentration), per month:
-- customers active at the close ranked by MRR (highest first; ties by customer_key);
-- the top 20% are the first ceil(0.2 x n) of the n active customers.
--   top_20pct_mrr_share = their MRR / all MRR at the close;
--   top_20pct_churned_mrr_share = churned MRR of the month (MRR at the previous close of
--     the customers that churned) coming from customers in the top 20% at the previous
--     close / all churned MRR of the month (null when nobody churned);
--   customers_for_80pct_mrr = the fewest customers (from the top) whose MRR reaches 80%
--     of all MRR at the close.
with months as (
    select customer_key, month_start, is_active_at_end, is_churned, mrr_end_usd, churned_mrr_usd
    from {{ ref('int_customer_mrr_months_classified') }}
),

ranked as (
    select
        customer_key,
        month_start,
        mrr_end_usd,
        row_number() over (
            partition by month_start order by mrr_end_usd desc, customer_key
        ) as mrr_rank,
        count(*) over (partition by month_start) as active_customers,
        sum(mrr_end_usd) over (partition by month_start) as total_mrr_usd,
        coalesce(sum(mrr_end_usd) over (
            partition by month_start order by mrr_end_usd desc, customer_key
            rows between unbounded preceding and 1 preceding
        ), 0) as mrr_before_usd
    from months
    where is_active_at_end
),

flagged as (
    select
        *,
        5 * mrr_rank <= active_customers + 4 as is_top_20pct,
        mrr_before_usd < cast('0.8' as decimal(38, 12)) * total_mrr_usd as is_needed_for_80pct
    from ranked
),

closes as (
    select
        month_start,
        max(active_customers) as active_customers,
        max(total_mrr_usd) as mrr_usd,
        sum(case when is_top_20pct then mrr_end_usd else 0 end) as top_mrr_usd,
        sum(case when is_needed_for_80pct then 1 else 0 end) as customers_for_80pct_mrr
    from flagged
    group by month_start
),

churns as (
    select
        churned.month_start,
        sum(churned.churned_mrr_usd) as churned_mrr_usd,
        sum(case when previous.is_top_20pct then churned.churned_mrr_usd else 0 end) as top_churned_mrr_usd
    from months as churned
    left join flagged as previous
        on previous.customer_key = churned.customer_key
       and previous.month_start = cast({{ dbt.dateadd('month', -1, 'churned.month_start') }} as date)
    where churned.is_churned
    group by churned.month_start
)

select
    months.month_start as month,
    cast(coalesce(closes.active_customers, 0) as bigint) as active_customers,
    {{ published_money('coalesce(closes.mrr_usd, 0)') }} as mrr,
    {{ safe_rate('closes.top_mrr_usd', 'closes.mrr_usd') }} as top_20pct_mrr_share,
    {{ safe_rate('churns.top_churned_mrr_usd', 'churns.churned_mrr_usd') }} as top_20pct_churned_mrr_share,
    {{ published_money('coalesce(churns.churned_mrr_usd, 0)') }} as churned_mrr,
    cast(coalesce(closes.customers_for_80pct_mrr, 0) as bigint) as customers_for_80pct_mrr
from {{ ref('int_reporting_months') }} as months
left join closes on closes.month_start = months.month_start
left join churns on churns.month_start = months.month_start
