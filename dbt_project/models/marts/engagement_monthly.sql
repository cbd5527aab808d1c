-- Product engagement per customer and month (docs/metrics.md, Engagement): active users,
-- DAU/MAU, and whether a customer new this month activated (sent the activation event
-- within 14 days after its first active instant).
with customer_months as (
    select
        months.customer_key,
        months.crm_account_id,
        months.month_start,
        cast({{ dbt.dateadd('month', 1, 'months.month_start') }} as date) as month_end,
        months.first_active_at,
        months.is_new
    from {{ ref('int_customer_mrr_months_classified') }} as months
),

workspaces as (
    select account_id, workspace_id
    from {{ ref('int_accounts_historized') }}
    where is_current and workspace_id is not null
),

workspace_months as (
    select workspace_id, month_start, user_days, active_users, active_days
    from {{ ref('int_activity_aggregated_to_workspace_months') }}
),

activity as (
    select
        customer_months.customer_key,
        customer_months.month_start,
        workspace_months.user_days,
        workspace_months.active_users,
        workspace_months.active_days
    from customer_months
    inner join workspaces on workspaces.account_id = customer_months.crm_account_id
    inner join workspace_months
        on workspace_months.workspace_id = workspaces.workspace_id
       and workspace_months.month_start = customer_months.month_start
),

activations as (
    select
        customers.customer_key,
        min(events.event_at) as activated_at
    from (
        select distinct customer_key, crm_account_id, first_active_at from customer_months
    ) as customers
    inner join workspaces on workspaces.account_id = customers.crm_account_id
    inner join {{ ref('int_activity_calls_assigned_to_workspaces') }} as events
        on events.workspace_id = workspaces.workspace_id
       and events.event_type = 'track'
       and events.event_name = '{{ var("activation_event") }}'
       and events.event_at >= customers.first_active_at
       and events.event_at <= {{ dbt.dateadd('day', 14, 'customers.first_active_at') }}
       and events.event_at <= {{ as_of() }}
    group by customers.customer_key
)

select
    customer_months.month_start as month,
    customer_months.customer_key,
    workspaces.workspace_id,
    cast(coalesce(activity.active_users, 0) as bigint) as active_users,
    cast(coalesce(activity.active_days, 0) as bigint) as active_days,
    cast(coalesce(activity.user_days, 0) as double precision)
        / {{ dbt.datediff('customer_months.month_start', 'customer_months.month_end', 'day') }}
        as avg_daily_active_users,
    cast(coalesce(activity.user_days, 0) as double precision)
        / {{ dbt.datediff('customer_months.month_start', 'customer_months.month_end', 'day') }}
        / cast(nullif(activity.active_users, 0) as double precision) as dau_mau,
    customer_months.is_new as is_new_customer,
    case when customer_months.is_new then activations.activated_at is not null end as is_activated,
    case when customer_months.is_new then activations.activated_at end as activated_at
from customer_months
left join workspaces on workspaces.account_id = customer_months.crm_account_id
left join activity
    on activity.customer_key = customer_months.customer_key
   and activity.month_start = customer_months.month_start
left join activations on activations.customer_key = customer_months.customer_key
