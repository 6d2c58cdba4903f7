-- Rows of the report's mix ($mix_id; the latest run of it) per bucket and domain.
select mix_id, bucket, coalesce(domain, 'unknown') as domain, count(*) as n
from mix_latest
where mix_id = $mix_id
group by all
order by bucket, n desc
