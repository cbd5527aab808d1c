-- Every version of every CRM activity (calls, meetings, complaints, ...).
select
    activity_id,
    updated_at,
    account_id,
    user_id,
    lower(trim(type)) as activity_type,
    occurred_at,
    subject,
    body,
    row_number() over (partition by activity_id order by updated_at desc) = 1 as is_latest_version
from {{ source('crm', 'crm_activities') }}
