-- The mix id of the latest successful mix run.
select config->>'mix_id' as mix_id from runs where stage = 'mix' and status = 'ok' order by ended_at desc limit 1
