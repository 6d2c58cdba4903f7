-- Rejections per filter and reason, with their share of the traces that filter judged.
select
    filter,
    reason,
    count(*) as traces,
    round(count(*) / sum(count(*)) over (partition by filter), 4) as share_of_filter
from filter_results
group by filter, reason
order by filter, reason nulls first, traces desc
