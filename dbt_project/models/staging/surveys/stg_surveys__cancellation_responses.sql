-- Cancellation-flow responses: shown before the cancellation is final.
select
    response_id,
    submitted_at,
    {{ normalized_email('email') }} as respondent_email,
    nullif(trim(subscription_id), '') as subscription_id,
    nullif(lower(trim(primary_reason)), '') as primary_reason,
    reason_text,
    nullif(lower(trim(offer_presented)), '') as offer_presented,
    lower(trim(offer_accepted)) = 'true' as offer_accepted,
    nullif(lower(trim(outcome)), '') as outcome
from {{ source('surveys', 'survey_cancellations') }}
