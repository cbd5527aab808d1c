-- One row per cancellation-survey response up to as_of: the offer, the outcome and, for a
-- save (outcome 'saved', whatever offer_accepted says), whether it was a deflection: its
-- customer is active at submitted_at + 30 days (null while that instant is after as_of).
-- saved_mrr is the customer's MRR at submitted_at (docs/metrics.md, Saves).
with responses as (
    select
        *,
        {{ dbt.dateadd('day', 30, 'submitted_at') }} as deflection_checked_at
    from {{ ref('int_cancellation_responses_resolved') }}
),

timeline as (
    select customer_key, valid_from, valid_to, mrr_usd
    from {{ ref('int_customer_mrr_timeline') }}
),

measured as (
    select
        responses.*,
        coalesce(at_submission.mrr_usd, 0) as mrr_at_submission_usd,
        coalesce(at_check.mrr_usd, 0) > 0 as is_active_at_check,
        responses.deflection_checked_at <= {{ as_of() }} as is_window_closed
    from responses
    left join timeline as at_submission
        on at_submission.customer_key = responses.customer_key
       and at_submission.valid_from <= responses.submitted_at
       and responses.submitted_at < at_submission.valid_to
    left join timeline as at_check
        on at_check.customer_key = responses.customer_key
       and at_check.valid_from <= responses.deflection_checked_at
       and responses.deflection_checked_at < at_check.valid_to
)

select
    response_id,
    customer_key,
    submitted_at,
    {{ month_of('submitted_at') }} as submitted_month,
    offer_presented,
    offer_accepted,
    outcome,
    outcome = 'saved' as is_save,
    deflection_checked_at,
    is_window_closed as is_deflection_known,
    case
        when not is_window_closed then null
        when outcome = 'saved' then is_active_at_check
        else false
    end as is_deflection,
    cast(case
        when outcome = 'saved' and customer_key is not null
            then {{ published_money('mrr_at_submission_usd') }}
    end as decimal(38, 2)) as saved_mrr,
    stated_category as reason_category
from measured
