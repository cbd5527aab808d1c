-- One row per churn, published (docs/metrics.md, Churn events and Reasons): when, how much,
-- voluntary or not, the primary reason and the kind of churn (archetype):
--   1. graduated     category no_longer_needed;
--   2. external      category external or payment_failed, or raw value budget_cut /
--                    business_closed;
--   3. we_messed_up  category product_quality or service, or a complaint in the 90 days before;
--   4. habit_change  category unused, or the customer has a workspace and no `track` call
--                    in [churned_at - 30 days, churned_at);
--   5. other.
with churns as (
    select * from {{ ref('int_churns_reasoned') }}
),

customers as (
    select distinct customer_key, crm_account_id
    from {{ ref('int_billing_customers_resolved') }}
),

workspaces as (
    select account_id, workspace_id
    from {{ ref('int_accounts_historized') }}
    where is_current and workspace_id is not null
),

activity as (  -- last_active_at and habit_change name `track` calls (docs/metrics.md), not
               -- page/screen views; each for the workspace it is assigned
    select workspace_id, event_at
    from {{ ref('int_activity_calls_assigned_to_workspaces') }}
    where workspace_id is not null and event_type = 'track'
),

-- The billing customers themselves, not the distinct `customers`: a repeated pair cannot
-- change a max, and PostgreSQL's planner then knows the sizes (with the distinct CTE it
-- guessed millions of churned workspaces and sorted every track call: 8.6 s against 4.3 s).
last_activity as (
    select
        churns.customer_key,
        churns.churned_at,
        max(activity.event_at) as last_active_at
    from churns
    inner join {{ ref('int_billing_customers_resolved') }} as billing_customers
        on billing_customers.customer_key = churns.customer_key
    inner join workspaces on workspaces.account_id = billing_customers.crm_account_id
    inner join activity
        on activity.workspace_id = workspaces.workspace_id
       and activity.event_at < churns.churned_at
    group by churns.customer_key, churns.churned_at
),

latest_nps as (
    select
        churns.customer_key,
        churns.churned_at,
        nps.score,
        row_number() over (
            partition by churns.customer_key, churns.churned_at
            order by nps.submitted_at desc, nps.response_id desc
        ) as recency
    from churns
    inner join {{ ref('int_nps_responses_resolved') }} as nps
        on nps.customer_key = churns.customer_key
       and nps.submitted_at < churns.churned_at
),

described as (
    select
        churns.*,
        customers.crm_account_id,
        workspaces.workspace_id,
        last_activity.last_active_at,
        latest_nps.score as nps_last
    from churns
    inner join customers on customers.customer_key = churns.customer_key
    left join workspaces on workspaces.account_id = customers.crm_account_id
    left join last_activity
        on last_activity.customer_key = churns.customer_key
       and last_activity.churned_at = churns.churned_at
    left join latest_nps
        on latest_nps.customer_key = churns.customer_key
       and latest_nps.churned_at = churns.churned_at
       and latest_nps.recency = 1
),

archetyped as (
    select
        *,
        case
            when reason_category = 'no_longer_needed' then 'graduated'
            when reason_category in ('external', 'payment_failed')
              or coalesce(primary_raw_value in ('budget_cut', 'business_closed'), false)
                then 'external'
            when reason_category in ('product_quality', 'service') or has_complaint_in_90_days
                then 'we_messed_up'
            when reason_category = 'unused'
              or (
                  workspace_id is not null
                  and (
                      last_active_at is null
                      or last_active_at < {{ dbt.dateadd('day', -30, 'churned_at') }}
                  )
              )
                then 'habit_change'
            else 'other'
        end as archetype
    from described
)

select
    customer_key,
    crm_account_id,
    billing_customer_id,
    churned_at,
    cancel_requested_at,
    churn_type,
    {{ published_money('mrr_lost_usd') }} as mrr_lost,
    tenure_days,
    last_active_at,
    nps_last,
    reason_category,
    archetype,
    archetype in ('habit_change', 'we_messed_up')
        or reason_category in ('price', 'product_fit', 'competitor') as is_influenceable,
    churn_month,
    spell_number,
    life_started_at,
    primary_source as reason_source,
    ending_subscriptions
from archetyped
