-- Every version of every CRM account the raw layer has seen.
select
    account_id,
    updated_at,
    name as account_name,
    nullif(lower(trim(domain)), '') as domain,
    industry,
    employee_count,
    lower(trim(region)) as region,
    lower(trim(segment)) as segment,
    owner_id,
    csm_id,
    nullif(trim(workspace_id), '') as workspace_id,
    nullif(trim(billing_customer_id), '') as billing_customer_id,
    created_at,
    coalesce(is_deleted, false) as is_deleted,
    row_number() over (partition by account_id order by updated_at desc) = 1 as is_latest_version,
    _loaded_at as loaded_at
from {{ source('crm', 'crm_accounts') }}
