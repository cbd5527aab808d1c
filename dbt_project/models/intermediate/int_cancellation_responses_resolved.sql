-- Cancellation-survey responses up to as_of, each tied to its customer (the customer of
-- its subscription when that subscription is known, else by respondent e-mail), with the
-- reason it states (docs/metrics.md, Reasons): its primary_reason when set and not 'other';
-- else the category its text's keywords give; else 'other' when primary_reason is 'other'
-- or the text is not empty (any character counts); else nothing (null).
with responses as (
    select *
    from {{ ref('stg_surveys__cancellation_responses') }}
    where submitted_at <= {{ as_of() }}
),

tied as (
    select
        responses.*,
        subscription_customers.customer_key as subscription_customer_key,
        respondents.customer_key as email_customer_key,
        respondents.match_step as email_match_step,
        respondents.most_customers_in_a_step
    from responses
    left join {{ ref('stg_billing__subscriptions') }} as subscriptions
        on subscriptions.subscription_id = responses.subscription_id
    left join {{ ref('int_billing_customers_resolved') }} as subscription_customers
        on subscription_customers.billing_customer_id = subscriptions.billing_customer_id
    left join {{ ref('int_respondent_emails_resolved') }} as respondents
        on respondents.email = responses.respondent_email
)

select
    response_id,
    submitted_at,
    subscription_id,
    coalesce(subscription_customer_key, email_customer_key) as customer_key,
    case
        when subscription_customer_key is not null then 'subscription'
        else email_match_step
    end as match_step,
    case
        when subscription_customer_key is not null or email_customer_key is not null then null
        when most_customers_in_a_step > 1 then 'the e-mail matches several customers'
        when respondent_email is null then 'unknown subscription and no e-mail'
        else 'unknown subscription and the e-mail matches no customer'
    end as unmatched_reason,
    primary_reason,
    reason_text,
    offer_presented,
    offer_accepted,
    outcome,
    case
        when primary_reason is not null and primary_reason <> 'other'
            then coalesce({{ raw_value_category('primary_reason') }}, 'other')
        else coalesce(
            {{ keyword_category('reason_text') }},
            case
                when primary_reason = 'other' or coalesce(reason_text, '') <> '' then 'other'
            end
        )
    end as stated_category
from tied
