-- One representative per group of `pick_members(idx, grp, status, n_chars, tie)`, chosen by the
-- configured preference ($k1..$k4, each accepted / shorter / longer / seeded); idx breaks ties.
select
    idx,
    grp,
    first_value(idx) over (
        partition by grp
        order by
            case $k1 when 'accepted' then -status when 'shorter' then n_chars when 'longer' then -n_chars else tie end,
            case $k2 when 'accepted' then -status when 'shorter' then n_chars when 'longer' then -n_chars else tie end,
            case $k3 when 'accepted' then -status when 'shorter' then n_chars when 'longer' then -n_chars else tie end,
            case $k4 when 'accepted' then -status when 'shorter' then n_chars when 'longer' then -n_chars else tie end,
            idx
        rows between unbounded preceding and unbounded following
    ) as rep
from pick_members
