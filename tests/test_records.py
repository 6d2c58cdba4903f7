from dataengine.records import Prompt, Trace, detect_think_format, split_completion


def test_think_block_splits_into_reasoning_and_answer():
    s = split_completion("<think>\nstep one\n</think>\n\nThe answer is 4.", "think")
    assert (s.reasoning, s.answer, s.think_closed) == ("step one", "The answer is 4.", True)


def test_unclosed_think_block_is_recorded_not_guessed():
    s = split_completion("<think>\nlet me count: 1, 2, 3", "think")
    assert s.think_closed is False
    assert s.answer == ""
    assert s.reasoning.startswith("let me count")


def test_prompt_opened_completion_starts_inside_reasoning():
    s = split_completion("I need to add.\n</think>\nIt is 4.", "prompt_opened")
    assert (s.reasoning, s.answer, s.think_closed) == ("I need to add.", "It is 4.", True)
    cut = split_completion("I need to add and then", "prompt_opened")
    assert cut.think_closed is False and cut.answer == ""


def test_sky_t1_markers_take_the_solution_as_answer():
    text = "<|begin_of_thought|>\n\nthinking\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\nx = \\boxed{2}\n<|end_of_solution|>"
    s = split_completion(text, "auto")
    assert s.think_format == "sky_t1"
    assert (s.reasoning, s.answer, s.think_closed) == ("thinking", "x = \\boxed{2}", True)


def test_no_markers_means_short_answer():
    s = split_completion("Bonjour !", "auto")
    assert (s.reasoning, s.answer, s.think_closed, s.think_format) == ("", "Bonjour !", None, "none")


def test_detection_prefers_explicit_markers():
    assert detect_think_format("<think>a</think>b") == "think"
    assert detect_think_format("a</think>b") == "prompt_opened"
    assert detect_think_format("<|begin_of_thought|>a") == "sky_t1"
    assert detect_think_format("plain") == "none"


def test_ids_are_deterministic_content_hashes():
    a, b = Prompt("What is 2+2?"), Prompt("What is 2+2?", source="other")
    assert a.prompt_id == b.prompt_id and len(a.prompt_id) == 32
    t1 = Trace(a.prompt_id, "<think>x</think>4", sample_idx=0, model="m", sampling_run="r")
    t2 = Trace(a.prompt_id, "<think>y</think>4", sample_idx=0, model="m", sampling_run="r")
    t3 = Trace(a.prompt_id, "<think>x</think>4", sample_idx=1, model="m", sampling_run="r")
    assert t1.trace_id == t2.trace_id != t3.trace_id


def test_metadata_is_always_valid_json():
    import json

    from dataengine.records import dumps_metadata

    for meta in ({"a": float("nan"), "b": [1, "é"]}, {"big": 2**70, 3: "int key"}, {"nested": {"x": float("inf")}}):
        parsed = json.loads(dumps_metadata(meta))  # strict parse: NaN would fail here
        assert set(parsed) == {str(k) for k in meta}
