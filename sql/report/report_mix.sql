-- The mix the report shows when none is chosen: the one the newest successful export wrote,
-- else the newest successful mix run's.
select coalesce(
    (select config->>'mix_id' from runs where stage = 'export' and status = 'ok' order by ended_at desc limit 1),
    (select config->>'mix_id' from runs where stage = 'mix' and status = 'ok' order by ended_at desc limit 1)
) as mix_id
