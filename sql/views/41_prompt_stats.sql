-- Pass rate per prompt: the difficulty signal for GRPO prompt selection, e.g.
--   select prompt_id from prompt_stats where pass_rate between 0.2 and 0.8 and not pseudo_reference
create or replace view prompt_stats as
select
    t.prompt_id,
    any_value(t.domain) as domain,
    count(*) as n_traces,
    count(v.trace_id) as n_verified,
    count(*) filter (where v.is_correct) as n_correct,
    count(*) filter (where v.is_correct)::double / nullif(count(v.trace_id), 0) as pass_rate,
    coalesce(bool_or(v.pseudo_reference), false) as pseudo_reference
from traces t
left join verified_traces v using (trace_id)
group by t.prompt_id
