-- Traces whose every filter result passed. A trace that was never filtered is not accepted.
create or replace view accepted_traces as
select t.*
from traces t
semi join (
    select trace_id from filter_results group by trace_id having bool_and(passed)
) ok using (trace_id)
