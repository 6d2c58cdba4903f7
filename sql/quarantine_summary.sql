-- Quarantined input rows per run, source and reason, newest runs first.
-- dataengine sql --query quarantine_summary
select q.run_id, q.source, q.reason, q.field, count(*) as rows, min(q.line) as first_line,
       any_value(q.detail) as example_detail
from quarantine q
left join runs r using (run_id)
group by all
order by any_value(r.started_at) desc nulls last, rows desc
