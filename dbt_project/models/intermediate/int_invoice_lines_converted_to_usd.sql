{{ config(post_hook="{{ assert_fx_rates_found(this) }}") }}

-- Invoice lines that contribute MRR (docs/metrics.md, Money: MRR): on a paid or open invoice,
-- a recurring price, not a proration. Each is converted once, at the rate of the month that
-- contains its own period start; the invoice header's period is ignored. A line without a
-- rate stops the build (post-hook), naming the currency and month. Lines that start after
-- as_of are left out: they cannot change anything reported.
with lines as (
    select
        lines.invoice_id,
        lines.line_id,
        lines.subscription_id,
        invoices.billing_customer_id,
        lines.currency,
        lines.recurring_interval,
        coalesce(lines.recurring_interval_count, 1) as recurring_interval_count,
        lines.amount,
        lines.period_start,
        lines.period_end,
        substr(cast({{ month_of('lines.period_start') }} as varchar), 1, 7) as rate_month
    from {{ ref('stg_billing__invoice_lines') }} as lines
    inner join {{ ref('stg_billing__invoices') }} as invoices
        on invoices.invoice_id = lines.invoice_id
    where invoices.status in ('paid', 'open')
      and lines.recurring_interval is not null
      and not lines.is_proration
      and lines.period_start <= {{ as_of() }}
)

select
    lines.*,
    cast(
        case when lines.currency = 'usd' then 1 else rates.rate_to_usd end
        as decimal(38, 12)
    ) as rate_to_usd
from lines
left join {{ ref('stg_billing__fx_rates') }} as rates
    on rates.currency = lines.currency
   and rates.rate_month = lines.rate_month
