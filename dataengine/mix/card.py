"""The dataset card (README.md) of an export: counts, spec, thresholds, policies, histograms.

Figures come from the store (the mix run's resolved config and counts, filter/verify/dedup
tables) and from the export's own row counts; a stage that has not run is said to have not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dataengine.mix.config import ExportConfig
from dataengine.store import Workspace


def _rows(ws: Workspace, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    return ws.query(sql, params).fetchall()


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _histograms(out: Path, tokens: dict[str, list[int]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    images = []
    (out / "images").mkdir(exist_ok=True)
    for bucket, values in sorted(tokens.items()):
        if not values:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
        ax.hist(values, bins=50, color="#3b6ea8")
        ax.set_title(f"{bucket}: tokens per row (n={len(values):,})")
        ax.set_xlabel("num_tokens")
        ax.set_ylabel("rows")
        fig.tight_layout()
        rel = f"images/num_tokens_{bucket}.png"
        fig.savefig(out / rel)
        plt.close(fig)
        images.append(rel)
    return images


def _percentiles(values: list[int]) -> str:
    if not values:
        return "-"
    s = sorted(values)
    pick = [s[min(len(s) - 1, int(q * len(s)))] for q in (0.5, 0.9, 0.99)]
    return f"mean {sum(s) / len(s):,.0f}, p50 {pick[0]:,}, p90 {pick[1]:,}, p99 {pick[2]:,}, max {s[-1]:,}"


def write_card(ws: Workspace, out: Path, mix_id: str, stats: dict[str, Any], ecfg: ExportConfig,
               files: dict[str, list[str]]) -> Path:
    """Write `out/README.md` (and `out/images/*.png`); returns the card's path."""
    run = _rows(ws, "select run_id, config, counts from runs where stage = 'mix' and status = 'ok' "
                    "and config->>'mix_id' = $m order by ended_at desc limit 1", {"m": mix_id})
    mix_cfg = json.loads(run[0][1]) if run else {}
    mix_counts = json.loads(run[0][2]) if run else {}
    splits = sorted(stats["rows"])
    images = _histograms(out, stats["tokens"])

    yaml_files = "\n".join(f"  - split: {s}\n    path: data/{s}-*.parquet" for s in splits)
    prov = provenance(ws, mix_id, ecfg)
    parts = [
        "---",
        "configs:\n- config_name: default\n  data_files:\n" + yaml_files if "parquet" in files else "configs: []",
        f"license: {prov['license']}",
        "task_categories:\n- text-generation",
        "tags:\n- reasoning\n- sft\n- chain-of-thought" + ("\n- synthetic" if prov["synthetic"] else ""),
        f"synthetic: {'true' if prov['synthetic'] else 'false'}",
        "---",
        f"# {ecfg.card_title}",
        "",
        f"Mix `{mix_id}` exported by dataengine: R1-style SFT data, a reasoning bucket (think block then "
        "answer) and a non-reasoning bucket (plain answers), in chat `messages` format.",
        "",
        "## Rows",
        _table(["split", "bucket", "domain", "rows"],
               [[s, b, d, n] for (s, b, d), n in sorted(stats["by_bucket_domain"].items())]),
        "",
        _table(["split", "rows"], [[s, stats["rows"][s]] for s in splits]),
        "",
        *provenance_section(prov),
        "## Columns",
        ("- `messages`: optional system, earlier turns (multi-turn rows), user, assistant." if ecfg.layout == "messages"
         else "- `prompt` (optional system, earlier turns, user) and `completion` ([assistant]): TRL's "
              "conversational prompt/completion layout (loss on the completion only)."),
        "  A reasoning row's assistant content is `<think>\\n…\\n</think>\\n\\n` + answer; a non-reasoning row's "
        "is the answer.",
        "- `prompt_id`, `trace_id`, `source`, `bucket` (`reasoning` / `non_reasoning`), `domain`.",
        "- `num_tokens` (prompt + completion; estimated when `num_tokens_estimated`), "
        "`verdicts` (struct: `math`, `mcq`, `code`, `judge` verdicts, null where that verifier did not run; "
        "`other`: JSON of any further verifier).",
        "",
        *training_section(ecfg, files),
        "## Mix spec",
    ]
    if mix_cfg:
        spec_keys = ["reasoning", "non_reasoning", "reasoning_weights", "non_reasoning_weights", "max_per_prompt",
                     "min_chars", "max_chars", "max_completion_tokens", "require_think_closed", "finish_reasons",
                     "shortfall", "upsample_cap", "seed"]
        parts.append(_table(["setting", "value"], [[k, f"`{json.dumps(mix_cfg.get(k))}`"] for k in spec_keys]))
        sel = mix_cfg.get("selection_used")
        parts += ["", f"Reasoning traces drawn only from the selection `{sel}` (latest `dataengine select` run of it)."
                  if sel else "Reasoning traces: no selection used (select not run, or `mix.selection: none`)."]
        unfilled = {k.split(":", 1)[1]: v for k, v in mix_counts.items() if k.startswith("unfilled:")}
        excluded = {k.split(":", 1)[1]: v for k, v in mix_counts.items() if k.startswith("excluded:")}
        parts += ["", "Rows the pool could not supply (after the shortfall policy): "
                  + ", ".join(f"{b}: {n:,}" for b, n in unfilled.items()) if unfilled else "",
                  "", "Traces that did not qualify, by first reason:", "",
                  _table(["bucket:reason", "traces"], [[k, v] for k, v in sorted(excluded.items())]) if excluded
                  else "(none)"]
    else:
        parts.append("(mix run not found)")

    # Filters
    parts += ["", "## Filters"]
    # Per bucket: non-reasoning rows are scored by their own profile, not as failed reasoning.
    flt = _rows(ws, "select coalesce(t.metadata->>'bucket', 'reasoning') as bucket, r.filter, "
                    "count(*) filter (where r.passed), count(*) filter (where not r.passed), any_value(r.config_hash) "
                    "from filter_results r left join traces t using (trace_id) group by all order by all")
    if flt:
        fruns = _rows(ws, "select config from runs where stage = 'filter' and status = 'ok' order by ended_at desc limit 1")
        parts.append(_table(["bucket", "filter", "passed", "failed", "config hash"], [list(r) for r in flt]))
        if fruns:
            parts += ["", "Thresholds (latest filter run):", "", "```json", json.dumps(json.loads(fruns[0][0]), indent=2), "```"]
        parts += ["", f"Mix requires: {json.dumps(mix_cfg.get('filters') or 'every filter row of a trace')} to pass."]
    else:
        parts.append("Filter stage not run (`filter_results` is empty): no filter constraint was applied.")

    # Verification
    parts += ["", "## Verification"]
    ver = _rows(ws, "select coalesce(t.metadata->>'bucket', 'reasoning'), v.verifier, v.verdict, count(*) "
                    "from verifications v left join traces t using (trace_id) group by all order by all")
    if ver:
        parts.append(_table(["bucket", "verifier", "verdict", "traces"], [list(r) for r in ver]))
        skipped = _rows(ws, "select counts->>'skipped_non_reasoning' from runs where stage = 'verify' and status = 'ok' "
                            "order by ended_at desc limit 1")
        if skipped and skipped[0][0]:
            parts += ["", f"Non-reasoning rows without a reference or tests were skipped by the verifiers "
                          f"(latest verify run: {int(skipped[0][0]):,}); the mix takes them unverified."]
        parts += ["", f"Policy: `{mix_cfg.get('verify_policy')}` of verifiers "
                  f"{json.dumps(mix_cfg.get('verifiers') or 'all')}, accepted verdicts "
                  f"{json.dumps(mix_cfg.get('accepted_verdicts'))}; unverified reasoning traces "
                  f"{'excluded' if mix_cfg.get('require_verified') else 'allowed'}."]
    else:
        parts.append("Verification stage not run (`verifications` is empty): no verdict constraint was applied.")

    # Dedup / decontamination
    parts += ["", "## Deduplication and decontamination"]
    dd = _rows(ws, "select count(*), count(distinct exact_group), count(distinct near_dup_cluster), "
                   "count(*) filter (where not is_representative), "
                   "count(*) filter (where contamination is not null and contamination::varchar not in ('{}', '[]', 'null')) "
                   "from dedup")
    if dd and dd[0][0]:
        n, groups, clusters, dups, contam = dd[0]
        parts.append(_table(["figure", "value"], [["traces with a dedup row", n], ["exact groups", groups],
                                                   ["near-duplicate clusters", clusters],
                                                   ["non-representatives (dropped)", dups],
                                                   ["traces with contamination entries", contam]]))
    else:
        parts.append("Dedup stage not run (`dedup` is empty): no duplicate or contamination constraint was applied.")

    # Lengths
    parts += ["", "## Lengths", ""]
    parts += [f"- {b}: {_percentiles(v)}" for b, v in sorted(stats["tokens"].items())]
    if stats["estimated"]:
        parts.append(f"- {stats['estimated']:,} rows have estimated token counts (no stored counts).")
    parts += ["", *[f"![{Path(i).stem}]({i})" for i in images]]
    parts += ["", "## Files", ""] + [f"- {fmt}: " + ", ".join(f"`{p}`" for p in paths[:6])
                                      + (f" … ({len(paths)} files)" if len(paths) > 6 else "")
                                      for fmt, paths in sorted(files.items())]
    parts += ["", "Load: `datasets.load_from_disk('hf')` or `datasets.load_dataset('parquet', data_dir='data')`."]
    card = out / "README.md"
    card.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return card


def provenance(ws: Workspace, mix_id: str, ecfg: ExportConfig) -> dict[str, Any]:
    """Who wrote the rows of the mix (model, engine), whether any is synthetic, and the licenses."""
    import fnmatch

    gens = _rows(ws, "select t.model, t.engine, count(*) from mix_latest m join traces t on t.trace_id = m.trace_id "
                     "where m.mix_id = $m group by all order by 3 desc, 1, 2", {"m": mix_id})
    # Licenses follow the prompts' sources (the data sets); a generated trace's own source is its run.
    sources = _rows(ws, "select p.source, count(*) from mix_latest m join traces t on t.trace_id = m.trace_id "
                        "join prompts p on p.prompt_id = t.prompt_id "
                        "where m.mix_id = $m group by all order by 2 desc, 1", {"m": mix_id})
    licenses = []
    for src, n in sources:
        lic = next((v for k, v in ecfg.source_licenses.items() if fnmatch.fnmatch(src or "", k)), None)
        licenses.append([src, n, lic or "unknown (set export.source_licenses)"])
    # The simulated engine writes stand-in text, never model output: its rows make the set synthetic.
    synthetic = any(engine == "simulated" for _, engine, _ in gens)
    return {"generators": [list(g) for g in gens], "sources": licenses, "synthetic": synthetic,
            "license": ecfg.license or "other"}


def provenance_section(prov: dict[str, Any]) -> list[str]:
    lines = ["## Provenance", "", "Rows by the model and engine that wrote them:", "",
             _table(["model", "engine", "rows"], prov["generators"]) if prov["generators"] else "(no rows)", ""]
    if prov["synthetic"]:
        lines += ["**Synthetic**: rows written by the `simulated` engine are stand-in text with planted "
                  "defects, generated for testing the pipeline; they are not model output.", ""]
    lines += ["## License", "", f"Dataset license: `{prov['license']}`. Sources and their licenses:", "",
              _table(["source", "rows", "license"], prov["sources"]) if prov["sources"] else "(no rows)", ""]
    return lines


def training_section(ecfg: ExportConfig, files: dict[str, list[str]]) -> list[str]:
    lines = ["## Training on it", ""]
    data = "data_files='data/*.parquet'" if "parquet" in files else "data_files='jsonl/*.jsonl'"
    if ecfg.chat_template:
        flag = "--assistant_only_loss" if ecfg.layout == "messages" else "--completion_only_loss"
        folder = "data" if "parquet" in files else "jsonl"
        lines += [f"- TRL, from this folder: `trl sft --model_name_or_path MODEL --dataset_name {folder} "
                  f"{flag} --chat_template_path chat_template.jinja` (the {ecfg.chat_template} template with "
                  "`{% generation %}` markers, so only assistant tokens carry loss), or "
                  f"`SFTTrainer(train_dataset=load_dataset(..., {data}), args=SFTConfig({flag[2:]}=True, "
                  "chat_template_path='chat_template.jinja'))`."]
    if "llamafactory" in files:
        lines += ["- LLaMA-Factory: point `dataset_dir` at this folder and name the entries of "
                  "`dataset_info.json` (sharegpt format) in `dataset:`."]
    return [*lines, ""]


__all__ = ["write_card"]
