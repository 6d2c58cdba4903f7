-- One verdict per trace from its verifiers (policy.combine): correct when any verifier says so,
-- else the worst of incorrect > timeout > unparseable > error. `pseudo_reference`: graded
-- against a majority-vote answer, not a real reference.
create or replace view verified_traces as
select
    trace_id,
    case
        when bool_or(verdict = 'correct') then 'correct'
        when bool_or(verdict = 'incorrect') then 'incorrect'
        when bool_or(verdict = 'timeout') then 'timeout'
        when bool_or(verdict = 'unparseable') then 'unparseable'
        else 'error'
    end as verdict,
    bool_or(verdict = 'correct') as is_correct,
    bool_or(coalesce(details->>'reference_kind', 'reference') = 'majority_vote') as pseudo_reference,
    list(verifier order by verifier) as verifiers
from verifications
group by trace_id
