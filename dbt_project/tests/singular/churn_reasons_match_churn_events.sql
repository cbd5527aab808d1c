-- churn_reasons and churn_events tell the same story: a tied statement points at an
-- existing churn of its customer, and a churn whose reason has a source has exactly one
-- primary statement, of that source and category.
with tied_to_nothing as (
    select reasons.customer_key, reasons.churned_at, 'statement tied to a churn that does not exist' as problem
    from {{ ref('churn_reasons') }} as reasons
    where reasons.churned_at is not null
      and not exists (
          select 1 from {{ ref('churn_events') }} as events
          where events.customer_key = reasons.customer_key
            and events.churned_at = reasons.churned_at
      )
),

primaries as (
    select customer_key, churned_at, count(*) as statements, min(source) as source, min(category) as category
    from {{ ref('churn_reasons') }}
    where is_primary
    group by customer_key, churned_at
),

mismatched as (
    select events.customer_key, events.churned_at, 'primary statement missing or different' as problem
    from {{ ref('churn_events') }} as events
    left join primaries
        on primaries.customer_key = events.customer_key
       and primaries.churned_at = events.churned_at
    where (events.reason_source is not null
           and (primaries.statements is null or primaries.statements <> 1
                or primaries.source <> events.reason_source
                or primaries.category <> events.reason_category))
       or (events.reason_source is null and primaries.statements is not null)
)

select * from tied_to_nothing
union all
select * from mismatched
