-- Rows of the qualified pool (temp table `cand`) chosen by the per-domain plan (registered table
-- `plan`: bucket, domain, target, take, copies_base, copies_extra, policy): the first `take` rows of
-- each domain in order-key order. `copies` > 1 only under the upsample policy.
with pool as (
    select c.*, row_number() over (partition by bucket, domain order by order_key) as domain_rank
    from cand c
    where excluded is null
)
select p.trace_id, p.prompt_id, p.bucket, p.domain, p.order_key, p.domain_rank,
       (q.copies_base + case when p.domain_rank <= q.copies_extra then 1 else 0 end)::integer as copies,
       case
           when q.copies_base + case when p.domain_rank <= q.copies_extra then 1 else 0 end > 1 then 'upsample'
           when p.domain_rank <= q.target then 'quota'
           else 'fill'
       end as reason
from pool p
join plan q using (bucket, domain)
where p.domain_rank <= q.take
order by p.order_key
