-- Each churn's primary reason: the first of these that states something (docs/metrics.md,
-- Reasons):
--   1. the latest cancellation-survey response with outcome 'canceled' submitted inside
--      the active life the churn ends ([life_started_at, churned_at], ties: greater
--      response_id); if it states nothing, go on;
--   2. billing feedback of the ending subscription with the latest canceled_at having one;
--   3. the latest complaint in [churned_at - 90 days, churned_at);
--   4. payment_failed when the churn is involuntary;
--   5. unknown.
-- Per customer: a night computes again only the customers whose churns or stated reasons
-- changed (macros/customer_incremental.sql).
{{ per_customer_config('reasons') }}

with churns as (
    select * from {{ ref('int_churns') }}
    where {{ is_changed_customer('reasons') }}
),

latest_survey as (
    select
        churns.customer_key,
        churns.churned_at,
        responses.response_id,
        responses.primary_reason,
        responses.stated_category,
        row_number() over (
            partition by churns.customer_key, churns.churned_at
            order by responses.submitted_at desc, responses.response_id desc
        ) as recency
    from churns
    inner join {{ ref('int_cancellation_responses_resolved') }} as responses
        on responses.customer_key = churns.customer_key
       and responses.outcome = 'canceled'
       and responses.submitted_at >= churns.life_started_at
       and responses.submitted_at <= churns.churned_at
),

latest_billing as (
    select
        ending.customer_key,
        ending.churned_at,
        statements.source_record_id,
        statements.raw_value,
        statements.category,
        row_number() over (
            partition by ending.customer_key, ending.churned_at
            order by
                case when ending.canceled_at is null then 1 else 0 end,
                ending.canceled_at desc,
                ending.subscription_id desc
        ) as recency
    from {{ ref('int_churn_ending_subscriptions') }} as ending
    inner join {{ ref('int_reason_statements') }} as statements
        on statements.source = 'billing'
       and statements.source_record_id = ending.subscription_id
),

complaints as (
    select
        churns.customer_key,
        churns.churned_at,
        statements.source_record_id,
        statements.category,
        row_number() over (
            partition by churns.customer_key, churns.churned_at
            order by statements.stated_at desc, statements.source_record_id desc
        ) as recency
    from churns
    inner join {{ ref('int_reason_statements') }} as statements
        on statements.source = 'crm'
       and statements.customer_key = churns.customer_key
       and statements.stated_at >= {{ dbt.dateadd('day', -90, 'churns.churned_at') }}
       and statements.stated_at < churns.churned_at
),

chosen as (
    select
        churns.*,
        case
            when survey.stated_category is not null then 'survey'
            when billing.category is not null then 'billing'
            when complaint.category is not null then 'crm'
        end as primary_source,
        case
            when survey.stated_category is not null then survey.response_id
            when billing.category is not null then billing.source_record_id
            when complaint.category is not null then complaint.source_record_id
        end as primary_source_record_id,
        case
            when survey.stated_category is not null then survey.primary_reason
            when billing.category is not null then billing.raw_value
            when complaint.category is not null then 'complaint'
        end as primary_raw_value,
        case
            when survey.stated_category is not null then survey.stated_category
            when billing.category is not null then billing.category
            when complaint.category is not null then complaint.category
            when churns.churn_type = 'involuntary' then 'payment_failed'
            else 'unknown'
        end as reason_category,
        complaint.source_record_id is not null as has_complaint_in_90_days
    from churns
    left join latest_survey as survey
        on survey.customer_key = churns.customer_key
       and survey.churned_at = churns.churned_at
       and survey.recency = 1
    left join latest_billing as billing
        on billing.customer_key = churns.customer_key
       and billing.churned_at = churns.churned_at
       and billing.recency = 1
    left join complaints as complaint
        on complaint.customer_key = churns.customer_key
       and complaint.churned_at = churns.churned_at
       and complaint.recency = 1
)

select * from chosen
