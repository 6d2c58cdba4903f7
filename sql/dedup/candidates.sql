-- LSH candidate pairs from `lsh_bands(idx, grp, band, key)`: two documents of the same group
-- whose keys agree in at least one band. A bucket of more than $max_bucket members pairs each
-- member with the bucket's first only (enough for connected components, and no m^2 blow-up
-- when thousands of samples of one prompt are identical).
with sized as (
    select
        idx, grp, band, key,
        count(*) over (partition by grp, band, key) as n,
        min(idx) over (partition by grp, band, key) as root
    from lsh_bands
),
multi as (
    select * from sized where n > 1
)
select distinct a, b
from (
    select x.idx as a, y.idx as b
    from multi x
    join multi y on x.grp = y.grp and x.band = y.band and x.key = y.key and x.idx < y.idx
    where x.n <= $max_bucket
    union all
    select root as a, idx as b
    from multi
    where n > $max_bucket and idx <> root
)
