-- Prompts whose sources disagree on the reference answer: the prompt row (first file ingested)
-- and traces that carry their own reference (metadata.reference_answer, set at ingest). Verify
-- grades each trace against its own reference, so nothing is resolved silently; this view lists
-- the disagreements for a person to read. References are compared after removing whitespace,
-- `$`, `\left`/`\right`, thin spaces (`\!`, `\,`), degree signs, `\text{…}` wrappers and a final period, with
-- `\dfrac`/`\tfrac` read as `\frac`, so `(3, \frac{\pi}{2})` and `\left( 3,\frac{\pi}{2} \right)`
-- agree; math-equivalent but differently written golds (0.5 vs 1/2) are still listed.
create or replace view reference_conflicts as
with refs as (
    select prompt_id, source, reference_answer as reference
    from prompts
    where nullif(trim(reference_answer), '') is not null
    union
    select prompt_id, source, metadata->>'reference_answer' as reference
    from traces
    where nullif(trim(metadata->>'reference_answer'), '') is not null
),
normed as (
    select *,
           regexp_replace(regexp_replace(regexp_replace(regexp_replace(reference,
               '\\text\{([^{}]*)\}', '\1', 'g'),
               '\\[dt]frac', '\\frac', 'g'),
               '\\left|\\right|\\!|\\,|\\?\$|\^\\circ|\^\{\\circ\}|\s', '', 'g'),
               '\.$', '') as norm
    from refs
)
select prompt_id,
       count(distinct norm) as n_references,
       list(distinct reference order by reference) as refs,
       list(distinct source order by source) as sources
from normed
group by prompt_id
having count(distinct norm) > 1
