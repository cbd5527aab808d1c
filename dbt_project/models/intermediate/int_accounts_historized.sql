-- Every known state of every CRM account with the span it held: [valid_from, valid_to).
-- Versions come from the raw layer (every version the loader saw) and from the dbt
-- snapshot (every version dbt saw); the same updated_at is one version.
with versions as (
    select
        account_id, updated_at, domain, region, segment, owner_id, csm_id, workspace_id,
        billing_customer_id, is_deleted, 1 as preference
    from {{ ref('stg_crm__accounts') }}

    union all

    select
        account_id, dbt_valid_from, domain, region, segment, owner_id, csm_id, workspace_id,
        billing_customer_id, is_deleted, 2 as preference
    from {{ ref('snp_crm_accounts') }}
),

distinct_versions as (
    select
        *,
        row_number() over (partition by account_id, updated_at order by preference) as copy_number
    from versions
)

select
    account_id,
    updated_at as valid_from,
    lead(updated_at) over (partition by account_id order by updated_at) as valid_to,
    row_number() over (partition by account_id order by updated_at) as version_number,
    lead(updated_at) over (partition by account_id order by updated_at) is null as is_current,
    domain,
    region,
    segment,
    owner_id,
    csm_id,
    workspace_id,
    billing_customer_id,
    is_deleted
from distinct_versions
where copy_number = 1
