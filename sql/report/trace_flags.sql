-- One row per trace with what each stage decided about it; the report aggregates this.
-- A NULL flag means the stage wrote no row for the trace (not run yet, or not reached).
-- Mix membership is that of the report's mix ($mix_id: the exported one unless chosen; the latest
-- run of it, as export reads it). `selected` means kept by the selection that mix drew from (or by
-- the latest selection when the mix used none), so the funnel counts the traces that could really
-- flow into the export.
with used_selection as (
    select coalesce(
        (select config->>'selection_used' from runs
         where stage = 'mix' and status = 'ok' and config->>'mix_id' = $mix_id
         order by ended_at desc limit 1),
        (select selection from selections order by written_at desc limit 1)) as selection
)
select
    t.trace_id,
    t.prompt_id,
    coalesce(t.metadata->>'bucket', 'reasoning') as bucket,
    coalesce(t.domain, p.domain, 'unknown') as domain,
    -- untagged traces take the language the language-mixing filter detected (its target language)
    coalesce(t.language, p.language, f.detected, 'unknown') as language,
    length(t.completion) as completion_chars,
    t.completion_tokens,
    f.n_filters,
    f.all_passed,
    v.n_verdicts,
    v.any_correct,
    sel.trace_id is not null as selected,
    d.is_representative,
    d.contaminated,
    m.trace_id is not null as in_mix
from traces t
left join prompts p using (prompt_id)
left join (
    select trace_id, count(*) as n_filters, bool_and(passed) as all_passed,
           any_value(nullif(scores->>'target_language', '')) filter (where filter = 'language_mixing') as detected
    from filter_results group by trace_id
) f using (trace_id)
left join (
    select trace_id, count(*) as n_verdicts, bool_or(verdict = 'correct') as any_correct
    from verifications group by trace_id
) v using (trace_id)
left join (
    select distinct trace_id from selected_traces where selection in (select selection from used_selection)
) sel using (trace_id)
left join (
    select
        trace_id,
        is_representative,
        coalesce(contamination::varchar not in ('{}', '[]', 'null', '""'), false) as contaminated
    from dedup
) d using (trace_id)
left join (
    select distinct trace_id from mix_latest where mix_id = $mix_id
) m using (trace_id)
