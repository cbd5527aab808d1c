-- Each account's segment and region at the close of the month before each reported month
-- (docs/metrics.md, Months): the latest version written before the month started, else the
-- first version known.
with accounts as (
    select account_id, segment, region
    from {{ ref('int_accounts_historized') }}
    where version_number = 1
)

select
    months.month_start,
    accounts.account_id,
    coalesce(at_close.segment, accounts.segment) as segment,
    coalesce(at_close.region, accounts.region) as region,
    at_close.account_id is null as is_first_known_state
from {{ ref('int_reporting_months') }} as months
cross join accounts
left join {{ ref('int_accounts_historized') }} as at_close
    on at_close.account_id = accounts.account_id
   and at_close.valid_from < months.month_start
   and (at_close.valid_to is null or at_close.valid_to >= months.month_start)
