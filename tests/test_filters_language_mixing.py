"""Language mixing on real multilingual data: MGSM in 11 languages, pure English and Chinese
traces, the R1 language-consistency reward, both language-ID backends."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from filter_cases import case

from filters import detect_language, language_consistency, run_filters
from filters.language_mixing import language_consistency_batch

MGSM_LANGS = ["bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"]


def _mgsm(shared_data, lang: str) -> list[str]:
    path = shared_data / "benchmarks" / "multilingual" / "mgsm" / f"mgsm_{lang}.tsv"
    return [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("lang", MGSM_LANGS)
def test_mgsm_questions_are_detected_as_their_own_language(shared_data, lang):
    questions = _mgsm(shared_data, lang)
    assert len(questions) == 250
    got = Counter(detect_language(q) for q in questions)
    assert got[lang] >= 0.99 * len(questions), got.most_common(4)


@pytest.mark.parametrize("lang", MGSM_LANGS)
def test_mgsm_question_as_its_own_reasoning_is_consistent(shared_data, lang):
    """A trace that reasons in the prompt's language passes, whatever the language or script."""
    qs = _mgsm(shared_data, lang)[:40]
    res = run_filters([{"prompt": q, "reasoning": q, "answer": q} for q in qs], ["language_mixing"])
    failed = [(q[:60], r["language_mixing"].reason) for q, r in zip(qs, res) if not r["language_mixing"].passed]
    assert not failed


def test_pure_chinese_traces_pass(shared_data):
    kk = json.loads((shared_data / "benchmarks/multilingual/knights_knaves_3ppl/kk_zh_3ppl_train.json").read_text("utf-8"))
    rows = [{"prompt": e["quiz"], "reasoning": e["quiz"], "answer": e["solution_text_format"]} for e in kk]
    zh = json.loads((shared_data / "sft/alpaca_zh_demo_llamafactory.json").read_text("utf-8"))
    pure = [e for e in zh if not re.search("[A-Za-z]", e["instruction"] + e["input"] + e["output"])]
    assert len(pure) > 600
    rows += [{"prompt": e["instruction"] + e["input"], "reasoning": e["output"], "answer": e["output"].split("\n")[-1]} for e in pure]
    res = run_filters(rows, ["language_mixing"])
    assert all(r["language_mixing"].passed for r in res), Counter(r["language_mixing"].reason for r in res)
    assert {r["language_mixing"].scores["target_language"] for r in res} == {"zh"}


def test_pure_english_traces_pass_and_translations_are_flagged(shared_data):
    en = json.loads((shared_data / "sft/alpaca_en_demo_llamafactory.json").read_text("utf-8"))
    rows = [{"prompt": e["instruction"] + e["input"], "reasoning": e["output"], "answer": e["output"]} for e in en]
    res = run_filters(rows, ["language_mixing"])
    flagged = [(rows[i]["prompt"][:50], r["language_mixing"].scores["other_languages"]) for i, r in enumerate(res)
               if not r["language_mixing"].passed]
    # The only two: "translate into Spanish" tasks answered in Spanish (not the prompt's language).
    assert len(flagged) == 2 and all("Spa" in p and "es" in langs for p, langs in flagged), flagged


def test_same_script_language_is_told_apart(shared_data):
    """A Spanish paragraph inside an English chain of thought: same script, caught by lid.176."""
    english = case(shared_data, "qwq:gsm8k/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/79")
    spanish = _mgsm(shared_data, "es")[3]
    row = dict(english, reasoning=english["reasoning"] + "\n\n" + spanish + "\n\n" + "So the answer follows.")
    s = run_filters([row], ["language_mixing"])[0]["language_mixing"].scores
    assert s["other_languages"].get("es", 0) >= 10 and s["same_script_foreign_words"] >= 10
    span = next(sp for sp in s["foreign_spans"] if sp["lang"] == "es")
    assert row["reasoning"][span["start"]:span["end"]].strip() in spanish


def test_language_consistency_reward(shared_data):
    english = case(shared_data, "qwq:gsm8k/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/79")["reasoning"]
    assert language_consistency(english, "en") == 1.0
    assert language_consistency(english, "zh") < 0.05  # an English CoT for a Chinese prompt
    drift = case(shared_data, "sky:aime24__Sky-T1-math-reflection-1.0-32B/4/0")["reasoning"]
    assert 0.3 < language_consistency(drift, "en") < 0.7
    assert language_consistency("", "en") == 0.0  # no words, no reward
    zh = _mgsm(shared_data, "zh")[0]
    assert language_consistency_batch([english, zh, zh + " " + english], ["en", "zh", "zh"])[:2] == [1.0, 1.0]


def test_langdetect_backend_agrees_on_the_known_cases(shared_data):
    keys = ["llama:215", "qwq:gsm8k/qwen/QwQ-32B/131", "qwq:gsm8k/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/79"]
    res = run_filters([case(shared_data, k) for k in keys], ["language_mixing"],
                      params={"language_mixing": {"backend": "langdetect"}})
    assert [r["language_mixing"].reason for r in res] == ["foreign_script_words_above_max"] * 2 + [None]
    assert detect_language(_mgsm(shared_data, "de")[0], backend="langdetect") == "de"
