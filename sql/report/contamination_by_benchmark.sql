-- Contaminated traces per benchmark, when `dedup.contamination` is an object keyed by benchmark.
select b.benchmark, count(*) as traces, count(distinct d.prompt_id) as prompts
from dedup d, unnest(json_keys(d.contamination)) as b(benchmark)
where json_type(d.contamination) = 'OBJECT'
group by all
order by traces desc
