-- NPS per month and segment (docs/metrics.md, NPS): each respondent's latest response in the
-- month, grouped by the segment its customer had at the close of the previous month
-- ('unknown' when the response matched no customer or no CRM account), plus 'all'.
with latest as (
    select
        responses.*,
        row_number() over (
            partition by responses.respondent_email, responses.submitted_month
            order by responses.submitted_at desc, responses.response_id desc
        ) as recency
    from {{ ref('int_nps_responses_resolved') }} as responses
    inner join {{ ref('int_reporting_months') }} as months
        on months.month_start = responses.submitted_month
),

segmented as (
    select
        latest.submitted_month as month_start,
        coalesce(segments.segment, 'unknown') as segment,
        latest.nps_category,
        latest.score
    from latest
    left join (
        select distinct customer_key, crm_account_id
        from {{ ref('int_billing_customers_resolved') }}
    ) as customers
        on customers.customer_key = latest.customer_key
    left join {{ ref('int_account_segments_monthly') }} as segments
        on segments.account_id = customers.crm_account_id
       and segments.month_start = latest.submitted_month
    where latest.recency = 1
),

grouped as (
    select month_start, segment, {{ _nps_sums() }}
    from segmented
    group by month_start, segment

    union all

    select month_start, 'all' as segment, {{ _nps_sums() }}
    from segmented
    group by month_start
)

select
    month_start as month,
    segment,
    respondents,
    promoters,
    passives,
    detractors,
    100 * {{ safe_rate('promoters - detractors', 'respondents') }} as nps,
    {{ safe_rate('score_total', 'respondents') }} as average_score
from grouped
