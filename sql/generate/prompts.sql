-- The prompts a generation run samples: optionally restricted to some sources / domains, in a
-- stable order (prompt_id) so `limit` picks the same prompts on every worker and every rerun.
select prompt_id, prompt, domain, language, reference_answer, metadata::varchar as metadata
from prompts
where (len($sources::varchar[]) = 0 or list_contains($sources::varchar[], source))
  and (len($domains::varchar[]) = 0 or list_contains($domains::varchar[], domain))
order by prompt_id
limit $limit
