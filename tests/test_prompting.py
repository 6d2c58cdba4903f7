"""Templates are data: shipped Jinja files render R1's cold-start, rejection-sampling and
non-reasoning prompts; the exemplar is drawn per domain, seeded; undefined variables fail loudly."""

from __future__ import annotations

import pytest

from dataengine.prompting import PromptRenderer, is_trivial_query, load_exemplars, template_names


def test_shipped_templates():
    assert {"cold_start", "rejection_sampling", "non_reasoning_cot", "plain"} <= set(template_names())


def test_rejection_sampling_uses_the_r1_instruction_for_math_only():
    r = PromptRenderer("rejection_sampling")
    math = r.render({"prompt": "What is 2+3?", "domain": "math", "prompt_id": "a"})
    assert math.endswith("Please reason step by step, and put your final answer within \\boxed{}.")
    assert r.render({"prompt": "Write a haiku.", "domain": "writing", "prompt_id": "b"}) == "Write a haiku."


def test_cold_start_draws_a_seeded_exemplar_from_the_prompt_domain():
    pool = load_exemplars()
    r = PromptRenderer("cold_start", seed=0)
    math_problems = {e.problem for e in pool["math"]}
    picks = {r.exemplar_for(f"p{i}", "math").problem for i in range(40)}
    assert picks == math_problems  # both math exemplars get used across prompts
    assert r.exemplar_for("p1", "math") == PromptRenderer("cold_start", seed=0).exemplar_for("p1", "math")
    assert r.exemplar_for("p1", "medical") in pool["general"]  # no pool of its own: general
    text = r.render({"prompt": "Solve for x: 3x + 7 = 22.", "domain": "math", "prompt_id": "p1"})
    assert "<think>" in text and "</think>" in text and "verify" in text
    assert text.endswith("Problem: Solve for x: 3x + 7 = 22.")
    assert r.exemplar_for("p1", "math").problem in text


def test_non_reasoning_template_skips_the_chain_of_thought_for_trivial_queries():
    r = PromptRenderer("non_reasoning_cot")
    assert r.render({"prompt": "hello", "prompt_id": "x"}) == "hello"
    assert r.render({"prompt": "Thanks!", "prompt_id": "y"}) == "Thanks!"
    long = r.render({"prompt": "Explain why the sky is blue.", "prompt_id": "z"})
    assert "short chain of thought" in long and long.endswith("Explain why the sky is blue.")
    assert is_trivial_query("你好") and not is_trivial_query("How do I sort a list in Python?")


def test_custom_template_file_and_strict_variables(tmp_path):
    t = tmp_path / "mine.jinja"
    t.write_text("[{{ style }}] {{ prompt }}")
    assert PromptRenderer(str(t), variables={"style": "terse"}).render({"prompt": "Q", "prompt_id": "q"}) == "[terse] Q"
    with pytest.raises(ValueError, match="style"):
        PromptRenderer(str(t)).render({"prompt": "Q", "prompt_id": "q"})
    with pytest.raises(ValueError, match="unknown template"):
        PromptRenderer("nope")


def test_system_prompt_is_optional():
    msgs = PromptRenderer("plain", system_prompt="Be brief.").messages({"prompt": "Q", "prompt_id": "q"})
    assert msgs == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q"}]
