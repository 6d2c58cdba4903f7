-- Languages of the traces, and how many of each passed every filter.
select language, count(*) as n, count(*) filter (where all_passed) as passed
from flags
group by language
order by n desc
limit 30
