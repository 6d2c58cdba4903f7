-- Pass rate per filter and per domain / language ($group is 'domain' or 'language'). Domains of
-- the non-reasoning bucket are named `non_reasoning · <category>`: they are scored by their own
-- profile and must not read as reasoning domains that fail.
select
    r.filter,
    case when $group = 'domain' and f.bucket <> 'reasoning' then f.bucket || ' · ' || f.domain
         when $group = 'domain' then f.domain else f.language end as grp,
    count(*) as n,
    avg(r.passed::int) as pass_rate
from filter_results r
join flags f using (trace_id)
group by all
order by grp, r.filter
