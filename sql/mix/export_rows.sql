-- The rows of one mix (latest run of $mix_id) with everything the export writes, in mix order.
-- Verdicts are folded into one JSON object {verifier: verdict} per trace.
select m.position, m.copies, m.bucket, m.domain, m.reason,
       t.trace_id, t.prompt_id, t.source, p.prompt, t.reasoning, t.answer,
       t.prompt_tokens, t.completion_tokens,
       t.metadata->>'system' as system,
       (t.metadata->'history')::varchar as history,
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
