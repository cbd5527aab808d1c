-- One row per churn (docs/metrics.md, Churn events): a customer going from active to not
-- active at churned_at, at or before as_of, with what billing says about it.
with churns as (
    select
        customer_key,
        spell_number,
        active_from as life_started_at,
        active_to as churned_at,
        mrr_at_end_usd as mrr_lost_usd,
        first_active_at
    from {{ ref('int_customer_active_spells') }}
    where has_ended_by_as_of
),

ending as (
    select
        customer_key,
        churned_at,
        min(billing_customer_id) as billing_customer_id,
        max(canceled_at) as cancel_requested_at,
        max(case when is_payment_failure then 1 else 0 end) = 1 as is_involuntary,
        count(distinct subscription_id) as ending_subscriptions
    from {{ ref('int_churn_ending_subscriptions') }}
    group by customer_key, churned_at
)

select
    churns.customer_key,
    churns.spell_number,
    churns.churned_at,
    {{ month_of('churns.churned_at') }} as churn_month,
    churns.life_started_at,
    churns.first_active_at,
    churns.mrr_lost_usd,
    ending.billing_customer_id,
    ending.ending_subscriptions,
    ending.cancel_requested_at,
    case when ending.is_involuntary then 'involuntary' else 'voluntary' end as churn_type,
    cast(floor({{ seconds_between('churns.first_active_at', 'churns.churned_at') }} / 86400) as bigint)
        as tenure_days
from churns
left join ending
    on ending.customer_key = churns.customer_key
   and ending.churned_at = churns.churned_at
