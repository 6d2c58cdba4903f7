-- The filter funnel: traces entering each filter (in funnel order: format, readability,
-- language_mixing, then any other filter by name), how many it passed and rejected, with the
-- pass rate. A trace counts at a step until the first filter that rejected it.
create or replace view filter_funnel as
with ordered as (
    select trace_id, filter, passed,
           dense_rank() over (order by case filter when 'format' then 1 when 'readability' then 2
                                                   when 'language_mixing' then 3 else 4 end, filter) as step
    from filter_results
),
first_fail as (
    select trace_id, min(case when not passed then step end) as failed_at
    from ordered
    group by trace_id
),
steps as (select distinct step, filter from ordered)
select
    s.step,
    s.filter,
    count(*) filter (where f.failed_at is null or f.failed_at >= s.step) as traces_in,
    count(*) filter (where f.failed_at is null or f.failed_at > s.step) as passed,
    count(*) filter (where f.failed_at = s.step) as rejected,
    round(count(*) filter (where f.failed_at is null or f.failed_at > s.step)
          / nullif(count(*) filter (where f.failed_at is null or f.failed_at >= s.step), 0), 4) as pass_rate
from steps s cross join first_fail f
group by s.step, s.filter
order by s.step
