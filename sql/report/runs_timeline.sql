-- Every stage run, newest last, with its counts and wall time.
select
    stage, status, run_id, started_at, ended_at,
    date_diff('millisecond', started_at, ended_at) / 1000.0 as seconds,
    count_in, count_out, count_quarantined
from runs
order by started_at
