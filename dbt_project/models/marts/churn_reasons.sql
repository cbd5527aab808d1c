-- Every stated churn reason, tied to the churns it explains (docs/metrics.md, Reasons):
--   survey  - the churn ending the active life it was submitted in (outcome canceled);
--   billing - the churns its subscription ended (its feedback counts for each, whenever given);
--   crm     - the churns in the 90 days after the complaint;
-- one row per statement and churn it is tied to, is_primary when it is that churn's primary
-- reason; a statement tied to no churn (e.g. a saved customer's survey, the cancelled
-- second subscription of a customer who stayed) has one row with churned_at null.
-- Per customer, as int_churns_reasoned (macros/customer_incremental.sql).
{{ per_customer_config('reasons') }}

with statements as (
    select * from {{ ref('int_reason_statements') }}
    where {{ is_changed_customer('reasons') }}
),

churns as (
    select customer_key, churned_at, life_started_at, primary_source, primary_source_record_id
    from {{ ref('int_churns_reasoned') }}
),

ties as (
    select statements.source, statements.source_record_id, churns.churned_at
    from statements
    inner join churns
        on churns.customer_key = statements.customer_key
       and statements.stated_at >= churns.life_started_at
       and statements.stated_at <= churns.churned_at
    where statements.source = 'survey' and statements.survey_outcome = 'canceled'

    union

    select statements.source, statements.source_record_id, ending.churned_at
    from statements
    inner join {{ ref('int_churn_ending_subscriptions') }} as ending
        on ending.subscription_id = statements.source_record_id
       and ending.customer_key = statements.customer_key
    where statements.source = 'billing'

    union

    select statements.source, statements.source_record_id, churns.churned_at
    from statements
    inner join churns
        on churns.customer_key = statements.customer_key
       and churns.churned_at > statements.stated_at
       and churns.churned_at <= {{ dbt.dateadd('day', 90, 'statements.stated_at') }}
    where statements.source = 'crm'
)

select
    statements.customer_key,
    ties.churned_at,
    statements.source,
    statements.raw_value,
    statements.raw_text,
    cast(statements.category as {{ dbt.type_string() }}) as category,  -- the seed's varchar on PostgreSQL
    coalesce(
        churns.primary_source = statements.source
        and churns.primary_source_record_id = statements.source_record_id,
        false
    ) as is_primary,
    statements.stated_at,
    statements.source_record_id
from statements
left join ties
    on ties.source = statements.source
   and ties.source_record_id = statements.source_record_id
left join churns
    on churns.customer_key = statements.customer_key
   and churns.churned_at = ties.churned_at
