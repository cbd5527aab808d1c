-- Which health signals fire, the risk level they make and the reasons in words
-- (docs/metrics.md, Customer health). Thresholds are vars (dbt_project.yml):
--   inactive      days_since_last_activity >= health_inactive_days
--   usage_drop    active_users_prev_30d > 0 and active_users_30d <= (1 - health_usage_drop_share) x it
--   low_seat_use  seat_use = active_users_30d / paid_seats < health_seat_use_below
--   spend_drop    with a year-earlier baseline (MRR a year and 90 days ago > 0):
--                   mrr_change_90d - mrr_change_90d_year_ago <= -health_spend_drop_share
--                 else mrr_change_90d <= -health_spend_drop_share
--   payment       a failed charge in the 30 days before, or a past_due / unpaid subscription
--   detractor     the latest NPS answer is a detractor's
--   complaint     a CRM complaint in the 90 days before
--   saved         a cancellation survey answered and saved in the 90 days before
--   no_contact    days_since_last_contact > health_no_contact_days
-- risk_level: high when at least health_high_signals fire, medium when at least one, else low.
-- A null signal never fires.
with signals as (
    select
        *,
        cast(active_users_30d as double precision) / cast(nullif(paid_seats, 0) as double precision)
            as seat_use,
        {{ safe_rate('mrr_now_usd - mrr_90d_ago_usd', 'mrr_90d_ago_usd') }} as mrr_change_90d,
        {{ safe_rate('mrr_now_usd - mrr_year_ago_usd', 'mrr_year_ago_usd') }} as mrr_change_yoy,
        {{ safe_rate('mrr_year_ago_usd - mrr_year_ago_90d_before_usd', 'mrr_year_ago_90d_before_usd') }}
            as mrr_change_90d_year_ago
    from {{ ref('int_customer_health_signals') }}
),

fired as (
    select
        *,
        coalesce(days_since_last_activity >= {{ var('health_inactive_days') }}, false) as fires_inactive,
        coalesce(
            active_users_prev_30d > 0
            and cast(active_users_30d as double precision)
                <= (1 - cast({{ var('health_usage_drop_share') }} as double precision))
                   * cast(active_users_prev_30d as double precision),
            false
        ) as fires_usage_drop,
        coalesce(seat_use < cast({{ var('health_seat_use_below') }} as double precision), false)
            as fires_low_seat_use,
        coalesce(
            case
                when mrr_change_90d_year_ago is not null
                    then mrr_change_90d - mrr_change_90d_year_ago
                         <= -cast({{ var('health_spend_drop_share') }} as double precision)
                else mrr_change_90d <= -cast({{ var('health_spend_drop_share') }} as double precision)
            end,
            false
        ) as fires_spend_drop,
        coalesce(failed_charges_30d > 0, false) or coalesce(has_past_due_subscription, false)
            as fires_payment,
        coalesce(nps_class = 'detractor', false) as fires_detractor,
        coalesce(complaints_90d > 0, false) as fires_complaint,
        saved_cancellations_90d > 0 as fires_saved,
        coalesce(days_since_last_contact > {{ var('health_no_contact_days') }}, false) as fires_no_contact
    from signals
),

counted as (
    select
        *,
        cast(
            case when fires_inactive then 1 else 0 end
            + case when fires_usage_drop then 1 else 0 end
            + case when fires_low_seat_use then 1 else 0 end
            + case when fires_spend_drop then 1 else 0 end
            + case when fires_payment then 1 else 0 end
            + case when fires_detractor then 1 else 0 end
            + case when fires_complaint then 1 else 0 end
            + case when fires_saved then 1 else 0 end
            + case when fires_no_contact then 1 else 0 end
        as bigint) as signals_fired
    from fired
)

select
    *,
    case
        when signals_fired >= {{ var('health_high_signals') }} then 'high'
        when signals_fired >= 1 then 'medium'
        else 'low'
    end as risk_level,
    nullif(concat_ws('; ',
        case when fires_inactive then
            'no product activity for ' || cast(days_since_last_activity as varchar) || ' days' end,
        case when fires_usage_drop then
            'active users down from ' || cast(active_users_prev_30d as varchar)
            || ' to ' || cast(active_users_30d as varchar) end,
        case when fires_low_seat_use then
            cast(active_users_30d as varchar) || ' of ' || cast(paid_seats as varchar) || ' paid seats active' end,
        case when fires_spend_drop and mrr_change_90d_year_ago is not null then
            'MRR change over 90 days well below the same season a year ago' end,
        case when fires_spend_drop and mrr_change_90d_year_ago is null then 'MRR down over 90 days' end,
        case when coalesce(failed_charges_30d > 0, false) then
            cast(failed_charges_30d as varchar) || ' failed charge(s) in 30 days' end,
        case when coalesce(has_past_due_subscription, false) then 'subscription past due' end,
        case when fires_detractor then 'NPS detractor (score ' || cast(nps_score as varchar) || ')' end,
        case when fires_complaint then
            cast(complaints_90d as varchar) || ' complaint(s) in 90 days' end,
        case when fires_saved then 'cancellation saved in the last 90 days' end,
        case when fires_no_contact then
            'no call, meeting or QBR for ' || cast(days_since_last_contact as varchar) || ' days' end
    ), '') as risk_reasons
from counted
