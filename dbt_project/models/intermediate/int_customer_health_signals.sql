-- A view: int_customer_health_scored reads it once and keeps every row (a table here
-- would be written and synced each night only to be read once, 113,000 wide rows at
-- 10,000 customers x 24 months).
{{ config(materialized='view') }}

-- The raw health signals of every customer active at an evaluation instant T: each month's
-- close (the first instant of the next month) and as_of (docs/metrics.md, Customer
-- health). A customer is active at T when its MRR there is > 0 (the close rule: a line
-- counts when s < T <= e). Each signal is null when its source holds nothing for the
-- customer: events (no workspace, or no activity call before T's day), billing charges (no
-- charge before T: pays by bank transfer), NPS (never answered), CRM (no account).
-- Day-based signals use whole UTC days before the day of T.
with instants as (
    select distinct evaluated_at
    from (
        select cast(month_end as timestamp) as evaluated_at from {{ ref('int_reporting_months') }}
        union all
        select {{ as_of() }}
    ) as candidates
),

active as (
    select
        instants.evaluated_at,
        cast(instants.evaluated_at as date) as evaluated_on,
        timeline.customer_key,
        timeline.mrr_usd as mrr_now_usd
    from instants
    inner join {{ ref('int_customer_mrr_timeline') }} as timeline
        on timeline.valid_from < instants.evaluated_at
       and instants.evaluated_at <= timeline.valid_to
       and timeline.is_active
),

customers as (
    select customer_key, max(crm_account_id) as crm_account_id
    from {{ ref('int_billing_customers_resolved') }}
    group by customer_key
),

accounts as (
    select account_id, workspace_id, owner_id, csm_id
    from {{ ref('int_accounts_historized') }}
    where is_current
),

described as (
    select
        active.*,
        customers.crm_account_id,
        accounts.workspace_id,
        accounts.owner_id,
        accounts.csm_id,
        {{ dbt.dateadd('day', -90, 'active.evaluated_at') }} as days_90_before,
        {{ dbt.dateadd('month', -12, 'active.evaluated_at') }} as year_before,
        {{ dbt.dateadd('day', -90, dbt.dateadd('month', -12, 'active.evaluated_at')) }} as year_and_90_days_before
    from active
    inner join customers on customers.customer_key = active.customer_key
    left join accounts on accounts.account_id = customers.crm_account_id
),

mrr_history as (
    select
        described.customer_key,
        described.evaluated_at,
        sum(case
            when timeline.valid_from < described.days_90_before
             and described.days_90_before <= timeline.valid_to then timeline.mrr_usd
            else 0
        end) as mrr_90d_ago_usd,
        sum(case
            when timeline.valid_from < described.year_before
             and described.year_before <= timeline.valid_to then timeline.mrr_usd
            else 0
        end) as mrr_year_ago_usd,
        sum(case
            when timeline.valid_from < described.year_and_90_days_before
             and described.year_and_90_days_before <= timeline.valid_to then timeline.mrr_usd
            else 0
        end) as mrr_year_ago_90d_before_usd
    from described
    inner join {{ ref('int_customer_mrr_timeline') }} as timeline
        on timeline.customer_key = described.customer_key
       and timeline.valid_from < described.days_90_before
    group by described.customer_key, described.evaluated_at
),

seats as (
    select
        described.customer_key,
        described.evaluated_at,
        max(invoice_lines.quantity) as paid_seats
    from described
    inner join {{ ref('int_invoice_lines_normalized_to_mrr') }} as lines
        on lines.customer_key = described.customer_key
       and lines.covers_from < described.evaluated_at
       and described.evaluated_at <= lines.covers_to
       and lines.monthly_amount_usd > 0
    inner join {{ ref('stg_billing__invoice_lines') }} as invoice_lines
        on invoice_lines.invoice_id = lines.invoice_id
       and invoice_lines.line_id = lines.line_id
    group by described.customer_key, described.evaluated_at
),

-- Each user's active days in a workspace by half month (days 1-15, 16-end): the first and
-- last active day. A 30-day window can cut a half month (at most 16 days) at one end only,
-- so "active in [lo, hi)" is exactly last_day >= lo and first_day < hi. Windows and last
-- activity then read ~1M half-month rows, not every user-day (4.7M user-days joined into
-- 7.9M window rows at 10,000 customers x 24 months).
half_months as (
    select workspace_id, user_id, month_start, half_end, first_day, last_day
    from {{ ref('int_activity_aggregated_to_half_months') }}
),

-- The last active day before each instant's day: the last day of the half months that end
-- by that day, carried forward along each workspace's half months (linear in half months
-- + instants; on the same day a half month's end sorts before the instant), and for the
-- one instant that can fall inside a half month, as_of, its own half month's days before
-- its day.
workspace_timeline as (
    select workspace_id, half_end as on_day, 0 as kind, max(last_day) as active_day
    from half_months
    group by workspace_id, half_end

    union all

    select distinct workspace_id, evaluated_on, 1, cast(null as date)
    from described
    where workspace_id is not null
),

as_of_half_month_days as (
    select workspace_id, max(activity_date) as active_day
    from {{ ref('int_activity_aggregated_to_daily_users') }}
    where activity_date >= {{ half_month_start(as_of()) }}
      and activity_date < cast({{ as_of() }} as date)
    group by workspace_id
),

last_activity as (
    select
        carried.workspace_id,
        carried.on_day,
        greatest(carried.active_day, as_of_half_month_days.active_day) as last_active_on
    from (
        select
            workspace_id,
            on_day,
            kind,
            max(active_day) over (
                partition by workspace_id order by on_day, kind
                rows between unbounded preceding and current row
            ) as active_day
        from workspace_timeline
    ) as carried
    left join as_of_half_month_days
        on as_of_half_month_days.workspace_id = carried.workspace_id
       and carried.on_day = cast({{ as_of() }} as date)
    where carried.kind = 1
),

-- The calendar months a 60-day window touches (at most three): half months are matched
-- by workspace and month, not each of a workspace's against each of its instants.
window_months as (
    select
        described.customer_key,
        described.evaluated_at,
        described.evaluated_on,
        described.workspace_id,
        cast({{ dbt.dateadd(
            'month', 'offsets.months_later',
            month_of(dbt.dateadd('day', -60, 'described.evaluated_on'))
        ) }} as date) as month_start
    from described
    cross join (select 0 as months_later union all select 1 union all select 2) as offsets
    where described.workspace_id is not null
),

window_users as (
    select
        window_months.customer_key,
        window_months.evaluated_at,
        count(distinct case
            when halves.last_day >= cast({{ dbt.dateadd('day', -30, 'window_months.evaluated_on') }} as date)
            then halves.user_id
        end) as active_users_30d,
        count(distinct case
            when halves.first_day < cast({{ dbt.dateadd('day', -30, 'window_months.evaluated_on') }} as date)
            then halves.user_id
        end) as active_users_prev_30d
    from window_months
    inner join half_months as halves
        on halves.workspace_id = window_months.workspace_id
       and halves.month_start = window_months.month_start
       and halves.last_day >= cast({{ dbt.dateadd('day', -60, 'window_months.evaluated_on') }} as date)
       and halves.first_day < window_months.evaluated_on
    group by window_months.customer_key, window_months.evaluated_at
),

activity as (
    select
        described.customer_key,
        described.evaluated_at,
        last_activity.last_active_on,
        coalesce(window_users.active_users_30d, 0) as active_users_30d,
        coalesce(window_users.active_users_prev_30d, 0) as active_users_prev_30d
    from described
    inner join last_activity
        on last_activity.workspace_id = described.workspace_id
       and last_activity.on_day = described.evaluated_on
    left join window_users
        on window_users.customer_key = described.customer_key
       and window_users.evaluated_at = described.evaluated_at
),

charges as (
    select
        described.customer_key,
        described.evaluated_at,
        sum(case
            when charges.status = 'failed'
             and charges.created_at >= {{ dbt.dateadd('day', -30, 'described.evaluated_at') }}
            then 1 else 0
        end) as failed_charges_30d
    from described
    inner join {{ ref('int_billing_customers_resolved') }} as billing_customers
        on billing_customers.customer_key = described.customer_key
    inner join {{ ref('stg_billing__charges') }} as charges
        on charges.billing_customer_id = billing_customers.billing_customer_id
       and charges.created_at < described.evaluated_at
    group by described.customer_key, described.evaluated_at
),

past_due as (
    select
        billing_customers.customer_key,
        max(case when subscriptions.status in ('past_due', 'unpaid') then 1 else 0 end) = 1
            as has_past_due_subscription
    from {{ ref('int_billing_customers_resolved') }} as billing_customers
    inner join {{ ref('stg_billing__subscriptions') }} as subscriptions
        on subscriptions.billing_customer_id = billing_customers.billing_customer_id
    group by billing_customers.customer_key
),

nps as (
    select
        described.customer_key,
        described.evaluated_at,
        responses.nps_category,
        responses.score,
        responses.submitted_at,
        row_number() over (
            partition by described.customer_key, described.evaluated_at
            order by responses.submitted_at desc, responses.response_id desc
        ) as recency
    from described
    inner join {{ ref('int_nps_responses_resolved') }} as responses
        on responses.customer_key = described.customer_key
       and responses.submitted_at < described.evaluated_at
),

crm as (
    select
        described.customer_key,
        described.evaluated_at,
        sum(case
            when activities.activity_type = 'complaint'
             and activities.occurred_at >= described.days_90_before then 1 else 0
        end) as complaints_90d,
        max(case
            when activities.activity_type in ('call', 'meeting', 'qbr') then activities.occurred_at
        end) as last_contact_at
    from described
    inner join {{ ref('stg_crm__activities') }} as activities
        on activities.account_id = described.crm_account_id
       and activities.is_latest_version
       and activities.occurred_at < described.evaluated_at
    group by described.customer_key, described.evaluated_at
),

saves as (
    select
        described.customer_key,
        described.evaluated_at,
        count(*) as saved_cancellations_90d
    from described
    inner join {{ ref('int_cancellation_responses_resolved') }} as responses
        on responses.customer_key = described.customer_key
       and responses.outcome = 'saved'
       and responses.submitted_at >= described.days_90_before
       and responses.submitted_at < described.evaluated_at
    group by described.customer_key, described.evaluated_at
)

select
    described.customer_key,
    described.evaluated_at,
    described.evaluated_at = {{ as_of() }} as is_as_of,
    months.month_start as month,
    described.crm_account_id,
    described.workspace_id,
    described.owner_id,
    owners.team as owner_team,
    described.csm_id,
    csms.team as csm_team,
    activity.last_active_on,
    case when activity.last_active_on is not null then
        cast({{ dbt.datediff('activity.last_active_on', 'described.evaluated_on', 'day') }} as bigint)
    end as days_since_last_activity,
    cast(case when activity.last_active_on is not null then activity.active_users_30d end as bigint)
        as active_users_30d,
    cast(case when activity.last_active_on is not null then activity.active_users_prev_30d end as bigint)
        as active_users_prev_30d,
    cast(seats.paid_seats as bigint) as paid_seats,
    cast(described.mrr_now_usd as decimal(38, 12)) as mrr_now_usd,
    cast(coalesce(mrr_history.mrr_90d_ago_usd, 0) as decimal(38, 12)) as mrr_90d_ago_usd,
    cast(coalesce(mrr_history.mrr_year_ago_usd, 0) as decimal(38, 12)) as mrr_year_ago_usd,
    cast(coalesce(mrr_history.mrr_year_ago_90d_before_usd, 0) as decimal(38, 12))
        as mrr_year_ago_90d_before_usd,
    cast(charges.failed_charges_30d as bigint) as failed_charges_30d,
    -- Billing keeps only a subscription's current status: known at as_of, not for past closes.
    case when described.evaluated_at = {{ as_of() }} then coalesce(past_due.has_past_due_subscription, false) end
        as has_past_due_subscription,
    nps.nps_category as nps_class,
    nps.score as nps_score,
    nps.submitted_at as nps_submitted_at,
    case when described.crm_account_id is not null then cast(coalesce(crm.complaints_90d, 0) as bigint) end
        as complaints_90d,
    crm.last_contact_at,
    case when crm.last_contact_at is not null then
        cast({{ dbt.datediff(
            'cast(crm.last_contact_at as date)', 'described.evaluated_on', 'day'
        ) }} as bigint)
    end as days_since_last_contact,
    cast(coalesce(saves.saved_cancellations_90d, 0) as bigint) as saved_cancellations_90d
from described
left join {{ ref('int_reporting_months') }} as months
    on cast(months.month_end as timestamp) = described.evaluated_at
left join {{ ref('stg_crm__users') }} as owners on owners.user_id = described.owner_id
left join {{ ref('stg_crm__users') }} as csms on csms.user_id = described.csm_id
left join mrr_history
    on mrr_history.customer_key = described.customer_key
   and mrr_history.evaluated_at = described.evaluated_at
left join seats
    on seats.customer_key = described.customer_key and seats.evaluated_at = described.evaluated_at
left join activity
    on activity.customer_key = described.customer_key and activity.evaluated_at = described.evaluated_at
left join charges
    on charges.customer_key = described.customer_key and charges.evaluated_at = described.evaluated_at
left join past_due on past_due.customer_key = described.customer_key
left join nps
    on nps.customer_key = described.customer_key
   and nps.evaluated_at = described.evaluated_at
   and nps.recency = 1
left join crm
    on crm.customer_key = described.customer_key and crm.evaluated_at = described.evaluated_at
left join saves
    on saves.customer_key = described.customer_key and saves.evaluated_at = described.evaluated_at
