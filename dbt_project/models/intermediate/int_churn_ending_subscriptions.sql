-- The ending subscriptions of each churn: those whose lines covered the instant just
-- before churned_at (covers_from < churned_at <= covers_to; zero-amount lines too), with
-- their payment signals.
with churns as (
    select customer_key, active_to as churned_at
    from {{ ref('int_customer_active_spells') }}
    where has_ended_by_as_of
),

ending_lines as (
    select
        churns.customer_key,
        churns.churned_at,
        lines.subscription_id,
        min(lines.billing_customer_id) as billing_customer_id
    from churns
    inner join {{ ref('int_invoice_lines_normalized_to_mrr') }} as lines
        on lines.customer_key = churns.customer_key
       and lines.covers_from < churns.churned_at
       and churns.churned_at <= lines.covers_to
    group by churns.customer_key, churns.churned_at, lines.subscription_id
)

select
    ending_lines.customer_key,
    ending_lines.churned_at,
    ending_lines.subscription_id,
    ending_lines.billing_customer_id,
    signals.canceled_at,
    signals.cancellation_reason,
    signals.cancellation_feedback,
    signals.cancellation_comment,
    signals.latest_invoice_status,
    signals.latest_charge_status,
    coalesce(signals.is_payment_failure, false) as is_payment_failure
from ending_lines
left join {{ ref('int_subscriptions_payment_signals') }} as signals
    on signals.subscription_id = ending_lines.subscription_id
