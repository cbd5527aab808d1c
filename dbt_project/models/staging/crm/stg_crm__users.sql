-- The company's own staff (account owners, CSMs, support), latest version of each: the id
-- and team only (names and e-mails of people are never published).
select
    user_id,
    lower(trim(team)) as team
from (
    select
        user_id,
        team,
        row_number() over (partition by user_id order by updated_at desc) as recency
    from {{ source('crm', 'crm_users') }}
) as versions
where recency = 1
