-- One row per customer per reported month from the month of its first active instant,
-- with a = MRR at the close of the previous month and b = MRR at the close of this one,
-- and the movement they make (docs/metrics.md, Months). Exact decimals; the marts round.
-- The close of month m is its last instant: a line counts when s < end(m) <= e.
-- Per customer: a night computes again the customers whose lines or CRM account changed,
-- and adds the months that closed since to everyone else (macros/customer_incremental.sql).
{{ per_customer_config('mrr_months', month_column='month_start') }}

with customers as (
    select customer_key, min(first_active_at) as first_active_at
    from {{ ref('int_customer_active_spells') }}
    group by customer_key
),

customer_months as (
    select
        customers.customer_key,
        customers.first_active_at,
        months.month_start,
        months.month_end
    from customers
    inner join {{ ref('int_reporting_months') }} as months
        on months.month_end > customers.first_active_at
    {% if is_incremental() -%}
    -- Unchanged customers: from the last month built, which the first new month follows.
    where {{ is_changed_customer('mrr_months', 'customers.customer_key') }}
       or months.month_start >= (select max(month_start) from {{ this }})
    {%- endif %}
),

closes as (
    select
        customer_months.*,
        coalesce(timeline.mrr_usd, 0) as mrr_close_usd
    from customer_months
    left join {{ ref('int_customer_mrr_timeline') }} as timeline
        on timeline.customer_key = customer_months.customer_key
       and timeline.valid_from < customer_months.month_end
       and customer_months.month_end <= timeline.valid_to
),

movements as (
    select
        customer_key,
        month_start,
        month_end,
        first_active_at,
        -- The first row's previous close is 0: the customer was never active before it.
        coalesce(
            lag(mrr_close_usd) over (partition by customer_key order by month_start), 0
        ) as mrr_start_usd,
        mrr_close_usd as mrr_end_usd
    from closes
)

select
    movements.customer_key,
    customers.crm_account_id,
    movements.month_start,
    coalesce(segments.segment, 'unknown') as segment,
    coalesce(segments.region, 'unknown') as region,
    movements.first_active_at,
    cast(movements.mrr_start_usd as decimal(38, 12)) as mrr_start_usd,
    cast(movements.mrr_end_usd as decimal(38, 12)) as mrr_end_usd,
    movements.mrr_start_usd > 0 as is_active_at_start,
    movements.mrr_end_usd > 0 as is_active_at_end,
    movements.mrr_start_usd <= 0 and movements.mrr_end_usd > 0
        and movements.first_active_at >= movements.month_start as is_new,
    movements.mrr_start_usd <= 0 and movements.mrr_end_usd > 0
        and movements.first_active_at < movements.month_start as is_reactivated,
    movements.mrr_start_usd > 0 and movements.mrr_end_usd <= 0 as is_churned,
    cast(case
        when movements.mrr_start_usd <= 0 and movements.mrr_end_usd > 0
         and movements.first_active_at >= movements.month_start then movements.mrr_end_usd
        else 0
    end as decimal(38, 12)) as new_mrr_usd,
    cast(case
        when movements.mrr_start_usd <= 0 and movements.mrr_end_usd > 0
         and movements.first_active_at < movements.month_start then movements.mrr_end_usd
        else 0
    end as decimal(38, 12)) as reactivation_mrr_usd,
    cast(case
        when movements.mrr_start_usd > 0 and movements.mrr_end_usd > movements.mrr_start_usd
        then movements.mrr_end_usd - movements.mrr_start_usd
        else 0
    end as decimal(38, 12)) as expansion_mrr_usd,
    cast(case
        when movements.mrr_end_usd > 0 and movements.mrr_end_usd < movements.mrr_start_usd
        then movements.mrr_start_usd - movements.mrr_end_usd
        else 0
    end as decimal(38, 12)) as contraction_mrr_usd,
    cast(case
        when movements.mrr_start_usd > 0 and movements.mrr_end_usd <= 0 then movements.mrr_start_usd
        else 0
    end as decimal(38, 12)) as churned_mrr_usd
from movements
inner join (
    select distinct customer_key, crm_account_id from {{ ref('int_billing_customers_resolved') }}
) as customers
    on customers.customer_key = movements.customer_key
left join {{ ref('int_account_segments_monthly') }} as segments
    on segments.account_id = customers.crm_account_id
   and segments.month_start = movements.month_start
{% if is_incremental() -%}
where {{ is_changed_customer('mrr_months', 'movements.customer_key') }}
   or movements.month_start > (select max(month_start) from {{ this }})
{%- endif %}
