-- A deterministic sample of traces with their stored filter scores, for the in-page sliders.
with picked as (
    select distinct trace_id from filter_results order by hash(trace_id) limit $n
)
select
    r.trace_id,
    f.domain,
    f.language,
    r.filter,
    r.passed,
    r.reason,
    r.scores::varchar as scores
from filter_results r
join picked using (trace_id)
join flags f using (trace_id)
order by r.trace_id, r.filter
