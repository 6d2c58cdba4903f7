-- Verification verdicts per verifier and domain.
select v.verifier, coalesce(f.domain, 'unknown') as domain, v.verdict, count(*) as n
from verifications v
left join flags f using (trace_id)
group by all
order by v.verifier, domain, v.verdict
