-- The monthly amount of each contributing invoice line in USD and the half-open span
-- [covers_from, covers_to) it covers (docs/metrics.md, Money: MRR):
--   monthly = amount / interval_count, month x1, year /12, week x52/12, day x365/12,
--             in whole units (minor units / 100 except zero-decimal currencies), converted;
--   the span is the line's period cut at its subscription's ended_at when that comes first.
-- Zero-amount lines (trials) stay: they add nothing, so they never make a customer active,
-- but they do cover their span (a subscription whose zero line covers the instant before a
-- churn is one of its ending subscriptions). Lines whose span is empty after the cut go.
with lines as (
    select
        lines.*,
        case when zero_decimal.currency is null then 100 else 1 end as minor_units_per_unit,
        case lines.recurring_interval
            when 'month' then 1 when 'year' then 1 when 'week' then 52 when 'day' then 365
        end as months_numerator,
        case lines.recurring_interval
            when 'month' then 1 else 12
        end as months_denominator
    from {{ ref('int_invoice_lines_converted_to_usd') }} as lines
    left join {{ ref('zero_decimal_currencies') }} as zero_decimal
        on zero_decimal.currency = lines.currency
),

normalized as (
    select
        lines.invoice_id,
        lines.line_id,
        lines.subscription_id,
        lines.billing_customer_id,
        customers.customer_key,
        lines.currency,
        lines.amount,
        lines.rate_to_usd,
        lines.recurring_interval,
        lines.recurring_interval_count,
        lines.period_start,
        lines.period_end,
        subscriptions.ended_at as subscription_ended_at,
        lines.period_start as covers_from,
        case
            when subscriptions.ended_at < lines.period_end then subscriptions.ended_at
            else lines.period_end
        end as covers_to,
        cast({{ exact_divide(
            'cast(lines.amount as decimal(38, 0)) * lines.rate_to_usd * lines.months_numerator',
            'lines.minor_units_per_unit * lines.months_denominator * lines.recurring_interval_count'
        ) }} as decimal(38, 12)) as monthly_amount_usd
    from lines
    left join {{ ref('stg_billing__subscriptions') }} as subscriptions
        on subscriptions.subscription_id = lines.subscription_id
    left join {{ ref('int_billing_customers_resolved') }} as customers
        on customers.billing_customer_id = lines.billing_customer_id
)

select *
from normalized
where covers_to > covers_from
