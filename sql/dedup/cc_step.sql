-- Connected components, one round: each node takes the smallest label among itself and its
-- neighbours, then jumps to its label's label (pointer jumping halves the rounds on chains).
create or replace temp table cc_next as
with sym as (
    select a as node, b as nb from cc_edges
    union all
    select b, a from cc_edges
),
nbr as (
    select s.node, min(l.label) as label
    from sym s
    join cc_labels l on l.node = s.nb
    group by s.node
),
stepped as (
    select c.node, least(c.label, coalesce(n.label, c.label)) as label
    from cc_labels c
    left join nbr n using (node)
)
select s.node, least(s.label, coalesce(j.label, s.label)) as label
from stepped s
left join stepped j on j.node = s.label
