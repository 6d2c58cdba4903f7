-- How many rows each stage's table holds: a stage with none is shown as "not run".
select 'prompts' as tbl, count(*) as n from prompts
union all select 'traces', count(*) from traces
union all select 'filter_results', count(*) from filter_results
union all select 'verifications', count(*) from verifications
union all select 'selections', count(*) from selections
union all select 'dedup', count(*) from dedup
union all select 'mix_members', count(*) from mix_members
union all select 'quarantine', count(*) from quarantine
