-- One row per customer with churns or stated reasons: a fingerprint of every row the
-- per-customer reason models read for that customer (macros/customer_incremental.sql):
-- its churns (as of as_of), cancellation responses, stated reasons, and ending
-- subscriptions with the billing feedback of each.
with reason_rows as (
    select churns.customer_key, {{ row_hash('churns', 1) }} as row_hash
    from {{ ref('int_churns') }} as churns

    union all

    select responses.customer_key, {{ row_hash('responses', 2) }}
    from {{ ref('int_cancellation_responses_resolved') }} as responses
    where responses.customer_key is not null

    union all

    select statements.customer_key, {{ row_hash('statements', 3) }}
    from {{ ref('int_reason_statements') }} as statements
    where statements.customer_key is not null

    union all

    -- The billing feedback is found by subscription, whoever it is resolved to.
    select
        ending.customer_key,
        {{ row_hash('ending', 4) }} + coalesce({{ row_hash('feedback', 5) }}, 0)
    from {{ ref('int_churn_ending_subscriptions') }} as ending
    left join {{ ref('int_reason_statements') }} as feedback
        on feedback.source = 'billing'
       and feedback.source_record_id = ending.subscription_id
)

select customer_key, {{ rows_fingerprint('row_hash') }} as reasons_fingerprint
from reason_rows
group by customer_key
