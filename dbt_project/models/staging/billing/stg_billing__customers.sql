-- Billing customers, deleted ones too (their invoices still exist).
with customers as (
    select
        id as billing_customer_id,
        {{ normalized_email('email') }} as email,
        created as created_at,
        lower(currency) as currency,
        nullif(trim(crm_account_id), '') as metadata_crm_account_id,
        coalesce(deleted, false) as is_deleted
    from {{ source('billing', 'billing_customers') }}
)

select
    *,
    -- The text after the last @ (identity rule 4).
    case
        when strpos(email, '@') > 0 then nullif(trim(reverse(split_part(reverse(email), '@', 1))), '')
    end as email_domain
from customers
