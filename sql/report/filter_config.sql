-- Resolved config of the newest finished filter run: where the sliders start.
select config::varchar as config
from runs
where stage = 'filter' and status = 'ok'
order by started_at desc
limit 1
