create or replace view contamination_per_benchmark as
-- Per benchmark, from the newest run that checked it: prompts that hit, benchmark items hit,
-- and a few of the shared n-grams.
with latest as (
    select benchmark, arg_max(run_id, written_at) as run_id
    from contamination_hits
    where prompt_id is null
    group by benchmark
),
hits as (
    select h.*
    from contamination_hits h
    join latest l using (benchmark, run_id)
    where h.prompt_id is not null
)
select
    l.benchmark,
    l.run_id,
    count(distinct h.prompt_id) as prompts_hit,
    count(distinct h.item_id) as items_hit,
    coalesce(sum(h.shared_ngrams), 0) as shared_ngrams,
    list(distinct h.item_id) filter (where h.item_id is not null)[1:20] as example_items,
    list(h.ngrams->>0) filter (where h.ngrams is not null)[1:5] as example_ngrams
from latest l
left join hits h using (benchmark)
group by l.benchmark, l.run_id
