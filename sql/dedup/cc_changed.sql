-- Connected components: how many labels the last round changed (0: converged).
select count(*) from cc_next n join cc_labels l using (node) where n.label <> l.label
