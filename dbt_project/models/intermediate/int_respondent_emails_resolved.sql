-- Survey respondents' e-mails tied to customers (docs/metrics.md, Who is a customer): the
-- customer whose CRM contact e-mail, then billing customer e-mail, equals it. A step that
-- hits several customers gives no match and the next step is tried; no domain rule.
with respondents as (
    select respondent_email as email
    from {{ ref('stg_surveys__cancellation_responses') }}
    where respondent_email is not null

    union

    select respondent_email
    from {{ ref('stg_surveys__nps_responses') }}
    where respondent_email is not null
),

customers as (
    select distinct customer_key, crm_account_id
    from {{ ref('int_billing_customers_resolved') }}
),

addresses as (
    select contacts.email, customers.customer_key, 1 as step, 'crm_contact_email' as match_step
    from {{ ref('stg_crm__contacts') }} as contacts
    inner join customers on customers.crm_account_id = contacts.account_id
    where contacts.is_latest_version and contacts.email is not null

    union all

    select billing.email, resolved.customer_key, 2 as step, 'billing_email' as match_step
    from {{ ref('stg_billing__customers') }} as billing
    inner join {{ ref('int_billing_customers_resolved') }} as resolved
        on resolved.billing_customer_id = billing.billing_customer_id
    where billing.email is not null
),

steps as (
    select
        respondents.email,
        addresses.step,
        addresses.match_step,
        count(distinct addresses.customer_key) as customers,
        min(addresses.customer_key) as customer_key
    from respondents
    inner join addresses on addresses.email = respondents.email
    group by respondents.email, addresses.step, addresses.match_step
),

first_unique_step as (
    select
        *,
        row_number() over (partition by email order by step) as step_rank
    from steps
    where customers = 1
),

most_customers as (  -- grouped once: a lookup per respondent scanned `steps` for each
    select email, max(customers) as most_customers_in_a_step
    from steps
    group by email
)

select
    respondents.email,
    first_unique_step.customer_key,
    first_unique_step.match_step,
    most_customers.most_customers_in_a_step
from respondents
left join most_customers on most_customers.email = respondents.email
left join first_unique_step
    on first_unique_step.email = respondents.email
   and first_unique_step.step_rank = 1
