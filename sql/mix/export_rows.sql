-- The rows of one mix (latest run of $mix_id) with everything the export writes, in mix order.
-- Reference definition only: sorting rows that carry 20 KB texts runs DuckDB out of memory at
-- R1 scale, so the export streams export_keys.sql + the text scans instead (mix/export.py
-- `ordered_rows`), and a test checks that both give the same rows in the same order.
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
