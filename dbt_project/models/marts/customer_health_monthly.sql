-- The at-risk list as it stood at each month's close: one row per customer active at the
-- close, so that the list can be judged against what happened next (risk_backtest).
select
    month,
    {{ health_columns() }}
from {{ ref('int_customer_health_scored') }}
where month is not null
