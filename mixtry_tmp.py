import glob, tempfile, time, json
from dataengine.store import Workspace
from dataengine.ingest import ingest, IngestOptions
from dataengine.mix.sft_ingest import ingest_sft
from dataengine.mix.assemble import run_mix
from dataengine.config import load_config_dict
ws = Workspace.init(tempfile.mkdtemp())
for f in sorted(glob.glob('../shared/data/sft/*')):
    ingest_sft(ws, f)
r = ingest(ws, '../shared/data/traces/thinking_llms_interp/r1distill_qwq_benchmark_traces.jsonl',
           IngestOptions(mapping={"prompt": "question", "completion": "response", "reference_answer": "gold_answer", "model": "thinking_model", "domain": "benchmark"}, think_format="prompt_opened"))
print(r.summary())
print(ws.query("select domain, think_closed, count(*) from traces where metadata->>'bucket' is null group by all").fetchall())
t=time.time()
out = run_mix(ws, load_config_dict({}), reasoning=1000, non_reasoning=300, seed=3)
print(time.time()-t)
print(json.dumps({k: out[k] for k in ["rows","rows_by_domain","excluded","shortfall","unfilled"]}, indent=1))
print(ws.query("select * from mix_latest limit 3").fetchall())
