-- Verified-correct traces, with whether they pass every filter that scored them, in prompt order.
-- No text: verify/select.py joins the texts on only for the policies that read them.
select
    t.trace_id,
    t.prompt_id,
    t.sample_idx,
    coalesce(length(t.completion), 0) as n_chars,
    v.pseudo_reference,
    coalesce(f.all_passed, true) as filters_passed,
    f.trace_id is not null as filtered
from traces t
join verified_traces v using (trace_id)
left join (
    select trace_id, bool_and(passed) as all_passed from filter_results group by trace_id
) f using (trace_id)
where v.is_correct
order by t.prompt_id, t.sample_idx, t.trace_id
