-- The rows of one mix (latest run of $mix_id) in mix order, without their long texts: sorting
-- these is cheap at any mix size. The texts (prompt, reasoning, answer, system, history) come
-- from export_trace_text.sql / export_prompt_text.sql, matched by id (mix/export.py).
-- Verdicts are folded into one JSON object {verifier: verdict} per trace.
select m.position, m.copies, m.bucket, m.domain, m.reason,
       t.trace_id, t.prompt_id, t.source,
       t.prompt_tokens, t.completion_tokens,
       v.verdicts
from mix_latest m
join traces t on t.trace_id = m.trace_id
join prompts p on p.prompt_id = t.prompt_id
left join (
    select trace_id, json_group_object(verifier, verdict)::varchar as verdicts
    from verifications group by trace_id
) v on v.trace_id = m.trace_id
where m.mix_id = $mix_id
order by m.position
