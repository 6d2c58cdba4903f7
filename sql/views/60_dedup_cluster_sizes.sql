create or replace view dedup_cluster_sizes as
-- Every duplicate group with more than one member: exact groups and near-dup clusters of traces,
-- and near-dup clusters of prompts. `representative` is the member that is kept.
select 'trace_exact' as kind, exact_group as cluster, count(*) as size,
       any_value(trace_id) filter (where is_representative) as representative
from dedup group by exact_group having count(*) > 1
union all
select 'trace_near', near_dup_cluster, count(*), near_dup_cluster
from dedup group by near_dup_cluster having count(*) > 1
union all
select 'prompt_near', near_dup_cluster, count(*), near_dup_cluster
from dedup_prompts group by near_dup_cluster having count(*) > 1
