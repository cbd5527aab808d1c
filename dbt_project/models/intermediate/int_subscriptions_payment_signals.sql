-- What billing says about each subscription's payments (docs/metrics.md, Churn events):
-- its cancellation reason, the status of its latest invoice that is neither void nor
-- draft (by created, then id; over all its invoices, whenever created) and of its latest
-- charge (by created; at equal times a success is the later). Any of payment_failed,
-- uncollectible or a failed latest charge makes a churn it ends involuntary.
with invoice_subscriptions as (
    select invoice_id, subscription_id
    from {{ ref('stg_billing__invoices') }}
    where subscription_id is not null

    union

    select invoice_id, subscription_id
    from {{ ref('stg_billing__invoice_lines') }}
    where subscription_id is not null
),

ranked_invoices as (
    select
        invoice_subscriptions.subscription_id,
        invoices.invoice_id,
        invoices.status,
        row_number() over (
            partition by invoice_subscriptions.subscription_id
            order by invoices.created_at desc, invoices.invoice_id desc
        ) as recency
    from invoice_subscriptions
    inner join {{ ref('stg_billing__invoices') }} as invoices
        on invoices.invoice_id = invoice_subscriptions.invoice_id
    where invoices.status not in ('void', 'draft')
),

ranked_charges as (
    select
        invoice_subscriptions.subscription_id,
        charges.charge_id,
        charges.status,
        row_number() over (
            partition by invoice_subscriptions.subscription_id
            order by
                charges.created_at desc,
                case when charges.status = 'succeeded' then 1 else 0 end desc,
                charges.charge_id desc
        ) as recency
    from invoice_subscriptions
    inner join {{ ref('stg_billing__charges') }} as charges
        on charges.invoice_id = invoice_subscriptions.invoice_id
)

select
    subscriptions.subscription_id,
    subscriptions.billing_customer_id,
    subscriptions.canceled_at,
    subscriptions.ended_at,
    subscriptions.cancellation_reason,
    subscriptions.cancellation_feedback,
    subscriptions.cancellation_comment,
    latest_invoice.invoice_id as latest_invoice_id,
    latest_invoice.status as latest_invoice_status,
    latest_charge.charge_id as latest_charge_id,
    latest_charge.status as latest_charge_status,
    coalesce(subscriptions.cancellation_reason = 'payment_failed', false)
        or coalesce(latest_invoice.status = 'uncollectible', false)
        or coalesce(latest_charge.status = 'failed', false) as is_payment_failure
from {{ ref('stg_billing__subscriptions') }} as subscriptions
left join ranked_invoices as latest_invoice
    on latest_invoice.subscription_id = subscriptions.subscription_id
   and latest_invoice.recency = 1
left join ranked_charges as latest_charge
    on latest_charge.subscription_id = subscriptions.subscription_id
   and latest_charge.recency = 1
