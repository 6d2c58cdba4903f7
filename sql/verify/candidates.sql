-- Traces the verify stage looks at, with what their prompt says: reference, tests, domain.
-- A trace ingested with its own reference (metadata.reference_answer) is graded against it: the
-- prompt row keeps only the first file's reference (see the reference_conflicts view).
-- $redo = true re-verifies traces that already have verifications.
select
    t.trace_id,
    t.prompt_id,
    -- The trace's own domain unless it is unset/general; then the prompt's.
    case when coalesce(t.domain, '') in ('', 'general') then coalesce(nullif(p.domain, ''), t.domain) else t.domain end as domain,
    t.answer,
    t.think_closed,
    coalesce(t.metadata->>'bucket', 'reasoning') as bucket,
    p.prompt,
    coalesce(t.metadata->>'reference_answer', p.reference_answer) as reference_answer,
    p.tests,
    cast(p.metadata as varchar) as prompt_metadata,
    -- Traces ingested with --kind traces keep their row's other fields (entry_point, tests, ...) here.
    cast(t.metadata as varchar) as trace_metadata
from traces t
left join prompts p using (prompt_id)
where $redo or t.trace_id not in (select trace_id from verifications)
order by t.prompt_id, t.sample_idx, t.trace_id
