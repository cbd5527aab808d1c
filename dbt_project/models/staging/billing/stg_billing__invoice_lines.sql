-- Invoice lines with their own service period; `subscription_id` is the line's, else the invoice's
-- (the loader already coalesced them).
select
    invoice_id,
    line_id,
    subscription as subscription_id,
    price_id,
    product,
    lower(currency) as currency,
    unit_amount,
    lower(recurring_interval) as recurring_interval,
    recurring_interval_count,
    quantity,
    amount,
    period_start,
    period_end,
    coalesce(proration, false) as is_proration
from {{ source('billing', 'billing_invoice_lines') }}
