-- Every version of every CRM contact; the e-mail as the identity rules compare it.
select
    contact_id,
    updated_at,
    account_id,
    {{ normalized_email('email') }} as email,
    is_primary,
    created_at,
    row_number() over (partition by contact_id order by updated_at desc) = 1 as is_latest_version
from {{ source('crm', 'crm_contacts') }}
