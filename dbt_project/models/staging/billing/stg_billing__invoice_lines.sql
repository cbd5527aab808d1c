-- Invoice lines with their own service period; `subscription_id` is the line's, else the invoice's
-- (the loader already coalesced them, in either Stripe API shape). `amount` is net of the
-- line's discounts (docs/metrics.md, Money: MRR); Stripe's own `amount` is `gross_amount`.
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
    amount - coalesce(discount_amount, 0) as amount,
    amount as gross_amount,
    coalesce(discount_amount, 0) as discount_amount,
    period_start,
    period_end,
    coalesce(proration, false) as is_proration
from {{ source('billing', 'billing_invoice_lines') }}
