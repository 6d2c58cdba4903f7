create or replace view mix_latest as
-- The members of each mix as its latest successful `mix` run chose them (a rerun of a mix id
-- replaces its selection; rows of failed or older runs are history).
with ok_runs as (
    select run_id, ended_at from runs where stage = 'mix' and status = 'ok'
),
latest as (
    select m.mix_id, arg_max(m.run_id, o.ended_at) as run_id
    from (select distinct mix_id, run_id from mix_members_history) m
    join ok_runs o using (run_id)
    group by m.mix_id
)
select m.* from mix_members_history m join latest l on m.mix_id = l.mix_id and m.run_id = l.run_id
