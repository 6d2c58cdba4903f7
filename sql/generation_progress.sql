-- Generation per (model, sampling run): prompts covered, samples, finish reasons, tokens, and the
-- (prompt, sample) pairs whose last attempt failed and are still missing (a rerun retries them).
with t as (
    select model, sampling_run, count(distinct prompt_id) as prompts, count(*) as traces,
           count(*) filter (where finish_reason = 'stop') as finished,
           count(*) filter (where finish_reason = 'length') as truncated,
           sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
           round(avg(completion_tokens)) as avg_completion_tokens
    from traces
    where engine <> 'ingest'
    group by all
),
q as (
    select count(*) as failed_attempts
    from quarantine
    where source like 'generate:%'
)
select t.*, q.failed_attempts from t, q
order by model, sampling_run
