-- Completion length histogram (characters, or tokens when $col = 'tokens'): all traces against
-- those that passed every filter. Values past the last bin are counted in it.
with v as (
    select
        case when $col = 'tokens' then completion_tokens else completion_chars end as x,
        all_passed
    from flags
)
select
    least(greatest(floor((x - $lo) / $width), 0), $bins - 1)::int as bin,
    count(*) as n,
    count(*) filter (where all_passed) as passed
from v
where x is not null
group by bin
order by bin
