-- Rows of each mix (latest run) by bucket and domain, with the reasons they were chosen.
select mix_id, bucket, domain,
       count(*) as traces,
       sum(copies) as rows,
       count(*) filter (where reason = 'quota') as by_quota,
       count(*) filter (where reason = 'fill') as by_fill,
       count(*) filter (where reason = 'upsample') as upsampled
from mix_latest
group by all
order by mix_id, bucket, rows desc
