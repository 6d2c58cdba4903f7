-- The traces the latest `dataengine select` run of each selection kept.
create or replace view selected_traces as
select s.*
from selections s
where s.run_id = (
    select max_by(s2.run_id, s2.written_at) from selections s2 where s2.selection = s.selection
)
