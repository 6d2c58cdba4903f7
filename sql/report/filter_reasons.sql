-- Why traces were rejected, per filter, most frequent first.
select filter, reason, count(*) as n
from filter_results
where not passed
group by all
order by n desc, filter, reason
limit 60
