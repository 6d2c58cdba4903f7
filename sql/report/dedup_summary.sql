-- Dedup figures: rows, duplicate groups, near-duplicate clusters, representatives, contamination.
with g as (
    select exact_group, count(*) as size from dedup where exact_group is not null group by exact_group
), c as (
    select near_dup_cluster, count(*) as size from dedup where near_dup_cluster is not null group by near_dup_cluster
)
select
    (select count(*) from dedup) as rows,
    (select count(*) from dedup where is_representative) as representatives,
    (select count(*) from g where size > 1) as exact_groups,
    (select coalesce(sum(size), 0) from g where size > 1) as rows_in_exact_groups,
    (select count(*) from c where size > 1) as near_dup_clusters,
    (select coalesce(sum(size), 0) from c where size > 1) as rows_in_near_dup_clusters,
    (select count(*) from flags where contaminated) as contaminated_traces,
    (select count(distinct prompt_id) from flags where contaminated) as contaminated_prompts
