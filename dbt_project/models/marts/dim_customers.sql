-- One row per customer (a company): its CRM account and billing customers, owners, current
-- segment and region, when it first paid, its MRR at as_of and its status, and its company
-- name. No e-mails or person names.
with billing_customers as (
    select * from {{ ref('int_billing_customers_resolved') }}
),

customers as (
    select
        customer_key,
        max(crm_account_id) as crm_account_id,
        {{ dbt.listagg('billing_customer_id', "', '", 'order by billing_customer_id') }}
            as billing_customer_ids,
        count(*) as billing_customer_count,
        min(match_rule) as best_match_rule
    from billing_customers
    group by customer_key
),

accounts as (
    select * from {{ ref('int_accounts_historized') }} where is_current
),

-- The company's name as the CRM holds it now (a company, not a person: alerts name it).
account_names as (
    select account_id, account_name from {{ ref('stg_crm__accounts') }} where is_latest_version
),

lives as (
    select
        customer_key,
        min(first_active_at) as first_active_at,
        sum(case when has_ended_by_as_of then 1 else 0 end) as churns,
        max(case when has_ended_by_as_of then active_to end) as last_churned_at
    from {{ ref('int_customer_active_spells') }}
    where active_from <= {{ as_of() }}
    group by customer_key
),

mrr_at_as_of as (
    select customer_key, mrr_usd
    from {{ ref('int_customer_mrr_timeline') }}
    where valid_from < {{ as_of() }} and {{ as_of() }} <= valid_to
)

select
    customers.customer_key,
    customers.crm_account_id,
    customers.billing_customer_ids,
    cast(customers.billing_customer_count as bigint) as billing_customer_count,
    customers.best_match_rule as identity_rule,
    accounts.workspace_id,
    coalesce(accounts.segment, 'unknown') as segment,
    coalesce(accounts.region, 'unknown') as region,
    accounts.owner_id,
    accounts.csm_id,
    coalesce(accounts.is_deleted, false) as is_crm_account_deleted,
    lives.first_active_at,
    cast(lives.first_active_at as date) as first_paid_date,
    {{ published_money('coalesce(mrr_at_as_of.mrr_usd, 0)') }} as current_mrr,
    case
        when coalesce(mrr_at_as_of.mrr_usd, 0) > 0 then 'active'
        when lives.first_active_at is not null then 'churned'
        else 'never_active'
    end as status,
    cast(coalesce(lives.churns, 0) as bigint) as churn_count,
    lives.last_churned_at,
    account_names.account_name
from customers
left join accounts on accounts.account_id = customers.crm_account_id
left join account_names on account_names.account_id = customers.crm_account_id
left join lives on lives.customer_key = customers.customer_key
left join mrr_at_as_of on mrr_at_as_of.customer_key = customers.customer_key
