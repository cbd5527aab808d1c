{#- The CRM accounts' history as dbt saw it, one version per change of updated_at.
    With the raw layer's versions it dates each account's segment and region, so a
    month is cut by the state at the close of the month before. -#}
{% snapshot snp_crm_accounts %}
{{
    config(
        unique_key='account_id',
        strategy='timestamp',
        updated_at='updated_at',
    )
}}
select
    account_id,
    updated_at,
    domain,
    region,
    segment,
    owner_id,
    csm_id,
    workspace_id,
    billing_customer_id,
    is_deleted
from {{ ref('stg_crm__accounts') }}
where is_latest_version
{% endsnapshot %}
