-- The funnel over `flags` (trace_flags.sql, registered by the report). A stage that has not run
-- passes everything through ($filter_ran … are booleans), so the chain never collapses to zero
-- because a later stage is missing.
select
    count(*) as generated,
    count(*) filter (where coalesce(all_passed, not $filter_ran)) as passed_filters,
    count(*) filter (
        where coalesce(all_passed, not $filter_ran) and coalesce(any_correct, not $verify_ran)
    ) as verified_correct,
    count(*) filter (
        where coalesce(all_passed, not $filter_ran) and coalesce(any_correct, not $verify_ran)
          and (selected or not $select_ran)
    ) as selected,
    count(*) filter (
        where coalesce(all_passed, not $filter_ran) and coalesce(any_correct, not $verify_ran)
          and (selected or not $select_ran)
          and coalesce(is_representative and not contaminated, not $dedup_ran)
    ) as deduplicated,
    count(*) filter (where in_mix) as in_mix
from flags
