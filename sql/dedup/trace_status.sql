-- Acceptance of each trace, for the representative preference "accepted":
--   1 accepted: a verifier said correct and no filter failed it
--  -1 rejected: a filter failed it, or verifiers said only incorrect / unparseable
--   0 unknown: neither verify nor filter has run on it
select
    trace_id,
    case
        when bool_or(failed) then -1
        when bool_or(correct) then 1
        when bool_or(wrong) then -1
        else 0
    end as status
from (
    select trace_id, verdict = 'correct' as correct, verdict in ('incorrect', 'unparseable') as wrong, false as failed
    from verifications
    union all
    select trace_id, false, false, not coalesce(passed, true)
    from filter_results
)
group by trace_id
