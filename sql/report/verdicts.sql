-- Verification verdicts per verifier, bucket and domain (non-reasoning rows apart: most are skipped).
select v.verifier, coalesce(f.bucket, 'reasoning') as bucket, coalesce(f.domain, 'unknown') as domain, v.verdict, count(*) as n
from verifications v
left join flags f using (trace_id)
group by all
order by v.verifier, bucket, domain, v.verdict
