-- Every trace of the pool with its bucket, domain, length, order key and the first reason it does
-- not qualify for the mix (`excluded` is null when it does). Used by dataengine.mix.assemble.
--
-- Stages whose table is empty have not run and constrain nothing ($filters_active, $verify_active,
-- $dedup_active say which ran). Filter verdicts apply to both buckets (each bucket is scored by its
-- own profile: an SFT row needs no think block, but readability and language still apply);
-- verdicts and the selection apply to the reasoning bucket only: the non-reasoning pool is reused
-- SFT data that no verifier can check.
-- The order key md5(seed:trace_id) makes the choice deterministic for a seed and independent of
-- shard order; a trace with chain-of-thought augmentation sorts first among its prompt's traces.
-- When a selection is used ($select_active, its name $selection), a reasoning trace qualifies only
-- if that selection (its latest select run) kept it, and the selection's rank orders the traces of a
-- prompt, so the select policy decides which traces reach the export.
-- The length expression between the N_CHARS and END markers is swapped by the caller for
-- length(t.answer) when no character bound is set: the answer is all an emptiness check needs,
-- and not reading the completions (20 KB each) is most of the cost of a mix.
with
flt as (
    select trace_id,
           count(*) filter (where len($filters) = 0 or list_contains($filters, "filter")) as n_counted,
           coalesce(bool_and(passed) filter (where len($filters) = 0 or list_contains($filters, "filter")), true) as passed
    from filter_results
    group by trace_id
),
ver as (
    select trace_id,
           count(*) as n,
           count(*) filter (where list_contains($accepted_verdicts, verdict)) as n_ok,
           count(*) filter (where verdict = 'incorrect') as n_incorrect
    from verifications
    where len($verifiers) = 0 or list_contains($verifiers, verifier)
    group by trace_id
),
dd as (
    select trace_id, is_representative,
           -- contamination is a JSON object/array of hits per benchmark; zero, false, null and empty
           -- entries are not hits, so `{"gsm8k": 0}` is clean.
           contamination is not null
             and regexp_replace(regexp_replace(contamination::varchar, '"[^"]*"\s*:\s*(0(\.0+)?|false|null|\[\]|\{\}|"")\s*,?', '', 'g'),
                                '\s', '', 'g') not in ('{}', '[]', 'null', '""', '0', 'false') as contaminated
    from dedup
),
sel as (
    select trace_id, min(rank) as sel_rank from selected_traces where selection = $selection group by trace_id
),
base as (
    select t.trace_id, t.prompt_id,
           coalesce(t.metadata->>'bucket', 'reasoning') as bucket,
           coalesce(nullif(t.domain, ''), 'general') as domain,
           /*N_CHARS*/length(t.completion)/*END*/ as n_chars,
           t.completion_tokens, t.think_closed, t.finish_reason,
           coalesce(length(t.answer), 0) as answer_chars,
           coalesce(t.metadata->>'cot_augmented' = 'true', false) as augmented,
           md5($seed::varchar || ':' || t.trace_id) as order_key
    from traces t
),
judged as (
    select b.*, s.sel_rank,
        case
            when b.bucket = 'reasoning' and $require_think_closed and not coalesce(b.think_closed, false) then 'think_not_closed'
            when b.bucket = 'reasoning' and $require_think_closed and b.answer_chars = 0 then 'empty_answer'
            when b.finish_reason is not null and not list_contains($finish_reasons, b.finish_reason) then 'finish_reason'
            when b.n_chars < $min_chars then 'too_short'
            when $max_chars is not null and b.n_chars > $max_chars then 'too_long'
            when $max_completion_tokens is not null and b.completion_tokens > $max_completion_tokens then 'too_many_tokens'
            when b.bucket = 'reasoning' and $filters_active and $require_filtered
                 and coalesce(f.n_counted, 0) < greatest(len($filters), 1) then 'unfiltered'
            when not coalesce(f.passed, true) then 'filter_failed'
            when b.bucket = 'reasoning' and $verify_active and $require_verified and v.trace_id is null then 'unverified'
            when b.bucket = 'reasoning' and v.trace_id is not null
                 and (($verify_all and v.n_ok < v.n) or (not $verify_all and (v.n_ok = 0 or v.n_incorrect > 0))) then 'verify_rejected'
            when b.bucket = 'reasoning' and $select_active and s.trace_id is null then 'not_selected'
            when $dedup_representatives_only and d.is_representative = false then 'duplicate'
            when $exclude_contaminated and coalesce(d.contaminated, false) then 'contaminated'
        end as excluded
    from base b
    left join flt f using (trace_id)
    left join ver v using (trace_id)
    left join dd d using (trace_id)
    left join sel s using (trace_id)
),
ranked as (
    select *,
           case when excluded is null
                then row_number() over (partition by bucket, prompt_id, excluded is null order by augmented desc, sel_rank nulls last, order_key)
           end as prompt_rank
    from judged
)
select trace_id, prompt_id, bucket, domain, n_chars, order_key,
       case when excluded is null and prompt_rank > $max_per_prompt then 'over_max_per_prompt' else excluded end as excluded
from ranked
