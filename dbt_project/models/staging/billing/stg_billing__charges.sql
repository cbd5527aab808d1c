select
    id as charge_id,
    customer as billing_customer_id,
    invoice as invoice_id,
    amount,
    lower(currency) as currency,
    created as created_at,
    lower(status) as status,
    failure_code
from {{ source('billing', 'billing_charges') }}
