-- Connected components, step 0: every node of `cc_edges(a, b)` labelled with itself.
create or replace temp table cc_labels as
select node, node as label
from (select a as node from cc_edges union select b from cc_edges)
