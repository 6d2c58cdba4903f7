-- Contamination hits of the newest decontaminate run per benchmark (a run marks each benchmark
-- it checked with a prompt_id NULL row, so a clean rerun supersedes older hits).
with latest as (
    select benchmark, arg_max(run_id, written_at) as run_id
    from contamination_hits
    where prompt_id is null
    group by benchmark
)
select h.prompt_id, h.benchmark, h.item_id, h.ngrams::varchar as ngrams
from contamination_hits h
join latest l using (benchmark, run_id)
where h.prompt_id is not null
order by h.prompt_id, h.benchmark, h.shared_ngrams desc, h.item_id
