-- One row per day: MetricFlow's time spine (metric_time), published with the marts.
select cast(d as date) as date_day
from generate_series(
    cast('2015-01-01' as timestamp), cast('2040-12-31' as timestamp), interval '1 day'
) as days(d)
