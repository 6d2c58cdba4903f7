-- Pass rate per filter.
select filter, count(*) as n, count(*) filter (where passed) as passed, avg(passed::int) as pass_rate
from filter_results
group by filter
order by filter
