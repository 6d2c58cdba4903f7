-- The funnel over `flags` (trace_flags.sql, registered by the report), in total (bucket null) and
-- per bucket. A stage that has not run passes everything through ($filter_ran … are booleans), so
-- the chain never collapses to zero because a later stage is missing. Verification and selection
-- apply to the reasoning bucket only (the mix draws non-reasoning rows without them), so
-- non-reasoning rows pass those steps: each step counts what could still reach the export.
with f as (
    select *,
           coalesce(all_passed, not $filter_ran) as ok_filter,
           bucket <> 'reasoning' or coalesce(any_correct, not $verify_ran) as ok_verify,
           bucket <> 'reasoning' or selected or not $select_ran as ok_select,
           coalesce(is_representative and not contaminated, not $dedup_ran) as ok_dedup
    from flags
)
select
    case when grouping(bucket) = 1 then null else bucket end as bucket,
    count(*) as generated,
    count(*) filter (where ok_filter) as passed_filters,
    count(*) filter (where ok_filter and ok_verify) as verified_correct,
    count(*) filter (where ok_filter and ok_verify and ok_select) as selected,
    count(*) filter (where ok_filter and ok_verify and ok_select and ok_dedup) as deduplicated,
    count(*) filter (where in_mix) as in_mix
from f
group by grouping sets ((), (bucket))
order by grouping(bucket) desc, bucket
