-- Invoice headers. Their period_start/period_end are not used for MRR (lines' periods are).
select
    id as invoice_id,
    customer as billing_customer_id,
    subscription as subscription_id,
    lower(status) as status,
    lower(currency) as currency,
    created as created_at,
    amount_due,
    amount_paid,
    attempt_count,
    billing_reason
from {{ source('billing', 'billing_invoices') }}
