-- The at-risk list: one row per customer active at as_of with its health signals, the
-- risk level they make and why (docs/metrics.md, Customer health).
select {{ health_columns() }}
from {{ ref('int_customer_health_scored') }}
where is_as_of
