-- Pass rate per filter and per domain / language ($group is 'domain' or 'language').
select
    r.filter,
    case when $group = 'domain' then f.domain else f.language end as grp,
    count(*) as n,
    avg(r.passed::int) as pass_rate
from filter_results r
join flags f using (trace_id)
group by all
order by grp, r.filter
