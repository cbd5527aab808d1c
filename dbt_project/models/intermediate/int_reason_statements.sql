-- Every churn reason a source states about a customer, up to as_of (docs/metrics.md, Reasons):
--   survey  - a cancellation-survey response that states something;
--   billing - a subscription's cancellation_details.feedback (comment kept as text only);
--   crm     - a complaint activity (raw value 'complaint'), categorised by the keywords of
--             subject + body,
--             'service' when none match.
-- E-mail addresses in free text are masked: these texts are published.
with survey as (
    select
        'survey' as source,
        response_id as source_record_id,
        customer_key,
        submitted_at as stated_at,
        primary_reason as raw_value,
        reason_text as raw_text,
        stated_category as category,
        outcome as survey_outcome
    from {{ ref('int_cancellation_responses_resolved') }}
    where customer_key is not null
      and stated_category is not null
),

billing as (
    select
        'billing' as source,
        signals.subscription_id as source_record_id,
        customers.customer_key,
        signals.canceled_at as stated_at,
        signals.cancellation_feedback as raw_value,
        signals.cancellation_comment as raw_text,
        coalesce({{ raw_value_category('signals.cancellation_feedback') }}, 'other') as category,
        cast(null as varchar) as survey_outcome
    from {{ ref('int_subscriptions_payment_signals') }} as signals
    inner join {{ ref('int_billing_customers_resolved') }} as customers
        on customers.billing_customer_id = signals.billing_customer_id
    where signals.cancellation_feedback is not null
      and (signals.canceled_at is null or signals.canceled_at <= {{ as_of() }})
),

complaints as (
    select
        activities.activity_id,
        activities.occurred_at,
        customers.customer_key,
        trim(coalesce(activities.subject, '') || ' ' || coalesce(activities.body, '')) as complaint_text
    from {{ ref('stg_crm__activities') }} as activities
    inner join (
        select distinct customer_key, crm_account_id
        from {{ ref('int_billing_customers_resolved') }}
        where crm_account_id is not null
    ) as customers
        on customers.crm_account_id = activities.account_id
    where activities.is_latest_version
      and activities.activity_type = 'complaint'
      and activities.occurred_at <= {{ as_of() }}
),

crm as (
    select
        'crm' as source,
        activity_id as source_record_id,
        customer_key,
        occurred_at as stated_at,
        'complaint' as raw_value,
        complaint_text as raw_text,
        coalesce({{ keyword_category('complaint_text') }}, 'service') as category,
        cast(null as varchar) as survey_outcome
    from complaints
),

statements as (
    select * from survey
    union all
    select * from billing
    union all
    select * from crm
)

select
    source,
    source_record_id,
    customer_key,
    stated_at,
    raw_value,
    {{ mask_emails('raw_text') }} as raw_text,
    category,
    survey_outcome
from statements
