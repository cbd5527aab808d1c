-- NPS responses up to as_of, tied to customers by respondent e-mail (contact, then billing).
select
    responses.response_id,
    responses.submitted_at,
    {{ month_of('responses.submitted_at') }} as submitted_month,
    responses.respondent_email,
    respondents.customer_key,
    respondents.match_step,
    case
        when respondents.customer_key is not null then null
        when respondents.most_customers_in_a_step > 1 then 'the e-mail matches several customers'
        else 'the e-mail matches no customer'
    end as unmatched_reason,
    responses.score,
    case
        when responses.score >= 9 then 'promoter'
        when responses.score >= 7 then 'passive'
        else 'detractor'
    end as nps_category
from {{ ref('stg_surveys__nps_responses') }} as responses
left join {{ ref('int_respondent_emails_resolved') }} as respondents
    on respondents.email = responses.respondent_email
where responses.submitted_at <= {{ as_of() }}
