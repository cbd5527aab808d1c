-- Each billing customer tied to a CRM account by the first identity rule that gives
-- exactly one account (docs/metrics.md, Who is a customer):
--   1. metadata.crm_account_id = an existing account_id (deleted accounts too);
--   2. accounts.billing_customer_id = the billing id (deleted accounts too);
--   3. the billing e-mail = a CRM contact's e-mail (deleted accounts too);
--   4. the e-mail's domain = the domain of exactly one non-deleted account, not free-mail.
-- Billing ids that invoices or subscriptions name but the customer list lacks are kept
-- as customers of their own, so that no MRR is lost.
with listed as (
    select
        billing_customer_id, email, email_domain, metadata_crm_account_id, is_deleted,
        true as is_listed_in_billing
    from {{ ref('stg_billing__customers') }}
),

referenced as (
    select billing_customer_id from {{ ref('stg_billing__invoices') }}
    union
    select billing_customer_id from {{ ref('stg_billing__subscriptions') }}
),

customers as (
    select * from listed
    union all
    select
        referenced.billing_customer_id,
        cast(null as varchar), cast(null as varchar), cast(null as varchar), cast(null as boolean),
        false
    from referenced
    where referenced.billing_customer_id is not null
      and not exists (
          select 1 from listed where listed.billing_customer_id = referenced.billing_customer_id
      )
),

accounts as (
    select account_id, domain, billing_customer_id, is_deleted
    from {{ ref('stg_crm__accounts') }}
    where is_latest_version
),

contacts as (
    select account_id, email
    from {{ ref('stg_crm__contacts') }}
    where is_latest_version and email is not null
),

rule_1 as (
    select customers.billing_customer_id, count(distinct accounts.account_id) as accounts,
           min(accounts.account_id) as account_id
    from customers
    inner join accounts on accounts.account_id = customers.metadata_crm_account_id
    group by customers.billing_customer_id
),

rule_2 as (
    select customers.billing_customer_id, count(distinct accounts.account_id) as accounts,
           min(accounts.account_id) as account_id
    from customers
    inner join accounts on accounts.billing_customer_id = customers.billing_customer_id
    group by customers.billing_customer_id
),

rule_3 as (
    select customers.billing_customer_id, count(distinct accounts.account_id) as accounts,
           min(accounts.account_id) as account_id
    from customers
    inner join contacts on contacts.email = customers.email
    inner join accounts on accounts.account_id = contacts.account_id
    group by customers.billing_customer_id
),

rule_4 as (
    select customers.billing_customer_id, count(distinct accounts.account_id) as accounts,
           min(accounts.account_id) as account_id
    from customers
    inner join accounts
        on accounts.domain = customers.email_domain
       and not accounts.is_deleted
    where customers.email_domain not in (
        select lower(trim(domain)) from {{ ref('free_mail_domains') }}
    )
    group by customers.billing_customer_id
),

matched as (
    select
        customers.*,
        case
            when rule_1.accounts = 1 then 1
            when rule_2.accounts = 1 then 2
            when rule_3.accounts = 1 then 3
            when rule_4.accounts = 1 then 4
        end as match_rule,
        case
            when rule_1.accounts = 1 then rule_1.account_id
            when rule_2.accounts = 1 then rule_2.account_id
            when rule_3.accounts = 1 then rule_3.account_id
            when rule_4.accounts = 1 then rule_4.account_id
        end as crm_account_id,
        rule_2.accounts as rule_2_accounts,
        rule_3.accounts as rule_3_accounts,
        rule_4.accounts as rule_4_accounts,
        customers.email_domain in (
            select lower(trim(domain)) from {{ ref('free_mail_domains') }}
        ) as has_free_mail_domain
    from customers
    left join rule_1 on rule_1.billing_customer_id = customers.billing_customer_id
    left join rule_2 on rule_2.billing_customer_id = customers.billing_customer_id
    left join rule_3 on rule_3.billing_customer_id = customers.billing_customer_id
    left join rule_4 on rule_4.billing_customer_id = customers.billing_customer_id
)

select
    billing_customer_id,
    crm_account_id,
    match_rule,
    coalesce(crm_account_id, billing_customer_id) as customer_key,
    is_listed_in_billing,
    is_deleted,
    case
        when crm_account_id is not null then null
        when not is_listed_in_billing then
            'named by invoices or subscriptions but missing from the billing customer list'
        else coalesce(nullif(concat_ws('; ',
            case when metadata_crm_account_id is not null
                 then 'metadata crm_account_id is not a CRM account' end,
            case when rule_2_accounts > 1
                 then 'rule 2: ' || cast(rule_2_accounts as varchar) || ' accounts record this billing id' end,
            case when rule_3_accounts > 1
                 then 'rule 3: the e-mail is a contact of ' || cast(rule_3_accounts as varchar) || ' accounts' end,
            case when email is null then 'no e-mail' end,
            case when has_free_mail_domain then 'free-mail domain' end,
            case when rule_4_accounts > 1
                 then 'rule 4: ' || cast(rule_4_accounts as varchar) || ' accounts share the domain' end
        ), ''), 'no CRM account carries its id, its e-mail or its domain')
    end as unmatched_reason
from matched
