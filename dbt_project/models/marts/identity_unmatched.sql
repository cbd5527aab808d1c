-- Every source record tied to no customer, with why (docs/metrics.md, Who is a customer).
-- Ids only: no e-mail address or name is published. Product events are summarised per
-- workspace (one row per workspace no customer owns, with how many calls it has: activity
-- calls by the workspace assigned to them, identify/group/alias calls by their own group id),
-- and activity that reaches no workspace per user (docs/sources.md section 3).
with customers as (
    select distinct customer_key, crm_account_id
    from {{ ref('int_billing_customers_resolved') }}
),

accounts as (
    select account_id, workspace_id, is_deleted
    from {{ ref('int_accounts_historized') }}
    where is_current
),

billing_customers as (
    select
        'billing' as source,
        'billing_customer' as record_type,
        billing_customer_id as record_id,
        unmatched_reason as reason,
        1 as records,
        cast(null as timestamp) as first_seen_at,
        cast(null as timestamp) as last_seen_at
    from {{ ref('int_billing_customers_resolved') }}
    where crm_account_id is null
),

crm_accounts as (
    select
        'crm' as source,
        'crm_account' as record_type,
        accounts.account_id as record_id,
        case
            when accounts.is_deleted then 'no billing customer is tied to this (deleted) account'
            else 'no billing customer is tied to this account'
        end as reason,
        1 as records,
        cast(null as timestamp) as first_seen_at,
        cast(null as timestamp) as last_seen_at
    from accounts
    where not exists (
        select 1 from customers where customers.crm_account_id = accounts.account_id
    )
),

cancellation_responses as (
    select
        'surveys' as source,
        'cancellation_response' as record_type,
        response_id as record_id,
        unmatched_reason as reason,
        1 as records,
        submitted_at as first_seen_at,
        submitted_at as last_seen_at
    from {{ ref('int_cancellation_responses_resolved') }}
    where customer_key is null
),

nps_responses as (
    select
        'surveys' as source,
        'nps_response' as record_type,
        response_id as record_id,
        unmatched_reason as reason,
        1 as records,
        submitted_at as first_seen_at,
        submitted_at as last_seen_at
    from {{ ref('int_nps_responses_resolved') }}
    where customer_key is null
),

workspace_events as (
    select
        'events' as source,
        'workspace' as record_type,
        events.workspace_id as record_id,
        case
            when not exists (
                select 1 from accounts where accounts.workspace_id = events.workspace_id
            ) then 'no CRM account has this workspace_id'
            else 'the account with this workspace is tied to no billing customer'
        end as reason,
        events.records,
        events.first_seen_at,
        events.last_seen_at
    from (
        select
            workspace_id,
            count(*) as records,
            min(event_at) as first_seen_at,
            max(event_at) as last_seen_at
        from (
            select workspace_id, event_at
            from {{ ref('int_activity_calls_assigned_to_workspaces') }}
            where workspace_id is not null

            union all

            select workspace_id, event_at
            from {{ ref('stg_events__events') }}
            where event_type in ('identify', 'group', 'alias')  -- unlisted types are ignored
              and workspace_id is not null
        ) as calls
        where event_at <= {{ as_of() }}
        group by workspace_id
    ) as events
    where not exists (
        select 1
        from accounts
        inner join customers on customers.crm_account_id = accounts.account_id
        where accounts.workspace_id = events.workspace_id
    )
),

-- Activity calls with no group id of their own and no group call of their user at or before
-- them: one row per user (user_id, else anonymous_id), or per call when it names neither.
activity_without_workspace as (
    select
        'events' as source,
        case
            when user_id is not null then 'product_user'
            when anonymous_id is not null then 'anonymous_user'
            else 'product_call'
        end as record_type,
        coalesce(user_id, anonymous_id, message_id) as record_id,
        case
            when user_key is not null
                then 'activity with no group id and no group call of this user at or before it'
            else 'activity with no group id and no user id'
        end as reason,
        count(*) as records,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at
    from {{ ref('int_activity_calls_assigned_to_workspaces') }}
    where workspace_id is null
      and event_at <= {{ as_of() }}
    group by 1, 2, 3, 4
),

unmatched as (
    select * from billing_customers
    union all
    select * from crm_accounts
    union all
    select * from cancellation_responses
    union all
    select * from nps_responses
    union all
    select * from workspace_events
    union all
    select * from activity_without_workspace
)

select
    source,
    record_type,
    record_id,
    reason,
    cast(records as bigint) as records,
    first_seen_at,
    last_seen_at
from unmatched
