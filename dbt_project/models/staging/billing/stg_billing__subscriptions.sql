select
    id as subscription_id,
    customer as billing_customer_id,
    status,
    created as created_at,
    start_date as started_at,
    trial_start as trial_started_at,
    trial_end as trial_ended_at,
    coalesce(cancel_at_period_end, false) as cancel_at_period_end,
    canceled_at,
    ended_at,
    current_period_start,
    current_period_end,
    cancellation_reason,
    nullif(trim(cancellation_feedback), '') as cancellation_feedback,
    cancellation_comment
from {{ source('billing', 'billing_subscriptions') }}
