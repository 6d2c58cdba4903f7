-- Rows of the newest mix per bucket and domain.
with latest as (select mix_id from mix_members order by written_at desc limit 1)
select mix_id, bucket, coalesce(domain, 'unknown') as domain, count(*) as n
from mix_members
where mix_id in (select mix_id from latest)
group by all
order by bucket, n desc
