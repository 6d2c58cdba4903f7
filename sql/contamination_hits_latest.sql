-- Every contaminated prompt of the newest decontaminate run per benchmark, with the shared
-- n-grams and the prompt text: `dataengine sql --query contamination_hits_latest`.
with latest as (
    select benchmark, arg_max(run_id, written_at) as run_id
    from contamination_hits
    where prompt_id is null
    group by benchmark
)
select h.benchmark, h.item_id, h.prompt_id, h.shared_ngrams, h.ngrams, p.source, left(p.prompt, 200) as prompt
from contamination_hits h
join latest l using (benchmark, run_id)
left join prompts p using (prompt_id)
where h.prompt_id is not null
order by h.benchmark, h.shared_ngrams desc
