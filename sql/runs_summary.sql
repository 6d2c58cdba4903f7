-- Every stage run with its counts; in = out + quarantined (+ already stored) for ingest runs.
select run_id, stage, status, started_at, ended_at, count_in, count_out, count_quarantined,
       counts->>'already_stored' as already_stored
from runs
order by started_at desc
