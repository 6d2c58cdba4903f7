-- The long per-trace texts the export writes, in storage order (no sort, no join: a plain scan
-- streams in bounded memory whatever the size); mix/export.py keeps the traces of the mix.
select trace_id, reasoning, answer,
       metadata->>'system' as system,
       (metadata->'history')::varchar as history
from traces
