"""`turnout eval`: the loop corpus meets its targets; BFCL data, schemas and AST match are right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from turnout.agent import bfcl
from turnout.agent.cli.main import main
from turnout.agent.evals.loops import eval_loops
from turnout.agent.evals.toolcalls import eval_toolcalls, time_left
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models
from turnout.runtimes.textprotocol.grammar import compiled_grammar

# -- eval loops ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loops_report():  # type: ignore[no-untyped-def]
    return eval_loops()


def test_every_looping_trace_is_caught_within_three_steps_of_its_second_cycle(loops_report) -> None:  # type: ignore[no-untyped-def]
    late = [t.name for t in loops_report.traces if t.looping and not t.in_time]
    assert loops_report.looping >= 10
    assert late == []


def test_no_healthy_trace_is_stopped_or_even_nudged(loops_report) -> None:  # type: ignore[no-untyped-def]
    flagged = [t.name for t in loops_report.traces if not t.looping and t.detected_at is not None]
    assert loops_report.healthy >= 8
    assert flagged == []


def test_every_degenerate_reply_is_aborted_within_64_tokens_and_no_healthy_one_is(loops_report) -> None:  # type: ignore[no-untyped-def]
    degenerate = [r for r in loops_report.replies if r.degenerate]
    assert degenerate and all(r.tripped and r.tokens_to_abort <= 64 for r in degenerate)
    assert loops_report.healthy_replies_aborted == 0


def test_the_looping_traces_end_in_a_clean_stop_when_they_run_long_enough(loops_report) -> None:  # type: ignore[no-untyped-def]
    stopped = [t for t in loops_report.traces if t.looping and t.stopped_at is not None]
    assert len(stopped) == loops_report.looping
    assert all(t.actions[-1] == "stop" and "nudge" in t.actions for t in stopped)


def test_turnout_eval_loops_prints_json_and_exits_zero(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "loops", "--json"]) == 0
    out, err = capfd.readouterr()
    report = json.loads(out)
    assert report["caught_in_time"] == report["looping"] and report["healthy_stopped"] == 0
    assert "llama_context" not in err  # loading the tokenizer says nothing on the terminal


# -- BFCL data and the AST checker -----------------------------------------------------------


def test_the_bfcl_categories_load_with_their_possible_answers() -> None:
    simple = bfcl.load_cases("simple_python")
    multiple = bfcl.load_cases("multiple", limit=5)

    assert len(simple) == 400 and len(multiple) == 5
    assert simple[0].id == "simple_python_0" and simple[0].answers
    assert len(multiple[0].functions) > 1


def test_skip_leaves_out_the_first_cases_so_held_out_ones_can_be_scored() -> None:
    from turnout.runtimes.errors import UsageError

    held_out = bfcl.load_cases("irrelevance", limit=3, skip=40)

    assert [c.id for c in held_out] == [c.id for c in bfcl.load_cases("irrelevance")[40:43]]
    with pytest.raises(UsageError, match="0 or more"):
        bfcl.load_cases("irrelevance", skip=-1)


def test_an_unknown_category_is_refused_naming_the_supported_ones() -> None:
    from turnout.runtimes.errors import UsageError

    with pytest.raises(UsageError, match="simple_python, multiple"):
        bfcl.load_cases("parallel")


def test_bfcl_types_become_json_schema_without_touching_a_property_named_type() -> None:
    schema = bfcl.json_schema(
        {
            "type": "dict",
            "properties": {
                "type": {"type": "string", "enum": ["a", "b"]},
                "ratio": {"type": "float"},
                "point": {"type": "tuple", "items": {"type": "integer"}},
                "anything": {"type": "any"},
            },
            "required": ["type"],
        }
    )
    assert schema["type"] == "object"
    assert schema["properties"]["type"] == {"type": "string", "enum": ["a", "b"]}
    assert schema["properties"]["ratio"] == {"type": "number"}
    assert schema["properties"]["point"] == {"type": "array", "items": {"type": "integer"}}
    assert schema["properties"]["anything"] == {}


def _first_accepted(value: object) -> object:
    """A concrete value from a possible answer; dicts in answers hold lists of accepted values."""
    if isinstance(value, dict):
        return {k: v[0] for k, v in value.items() if v[0] != ""}
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return [_first_accepted(item) for item in value]
    return value


def _first_answer_call(case: bfcl.BfclCase) -> tuple[str, dict]:
    name, params = next(iter(case.answers[0].items()))
    # Some answers list "" (omitted) first even for a required argument: take a real value.
    chosen = {k: next((x for x in v if x != ""), "") for k, v in params.items()}
    return name, {k: _first_accepted(x) for k, x in chosen.items() if x != ""}


def test_the_ground_truth_answer_of_every_case_matches_itself() -> None:
    for category in bfcl.DEFAULT_CATEGORIES:
        for case in bfcl.load_cases(category):
            ok, why = bfcl.ast_match(case.functions, [_first_answer_call(case)], case.answers, category)
            assert ok, (case.id, why)


def test_a_wrong_value_a_missing_argument_and_a_wrong_function_do_not_match() -> None:
    case = bfcl.load_cases("simple_python", limit=1)[0]  # calculate_triangle_area(base=10, height=5)
    match = lambda calls: bfcl.ast_match(case.functions, calls, case.answers, "simple_python")

    assert match([("calculate_triangle_area", {"base": 10, "height": 5})]) == (True, "")
    assert match([("calculate_triangle_area", {"base": 10, "height": 6})])[0] is False
    assert "missing required" in match([("calculate_triangle_area", {"base": 10})])[1]
    assert "not found" in match([("area", {"base": 10, "height": 5})])[1]
    assert match([])[1] == "wrong number of functions"


def test_an_irrelevance_case_is_right_only_without_a_call() -> None:
    cases = bfcl.load_cases("irrelevance")
    assert len(cases) == 240 and all(case.answers == [] for case in cases)
    case = cases[0]  # a triangle's area, with only a body-mass-index function on offer
    offered = case.functions[0]["name"]
    assert bfcl.ast_match(case.functions, [], case.answers, "irrelevance") == (True, "answered without a call")
    assert bfcl.ast_match(case.functions, [(offered, {"weight": 70, "height": 1.8})], case.answers,
                          "irrelevance") == (False, f"called {offered}")


def test_strings_match_as_bfcl_compares_them_ignoring_case_spaces_and_punctuation() -> None:
    function = {
        "name": "f", "parameters": {"type": "dict", "properties": {"city": {"type": "string"},
                                                                   "x": {"type": "float"}},
                                    "required": ["city", "x"]},
    }
    answers = [{"f": {"city": ["New York, NY"], "x": [2.0]}}]

    assert bfcl.ast_match([function], [("f", {"city": "new york NY", "x": 2})], answers, "simple_python")[0]


def test_a_grammar_compiles_for_the_tools_of_every_bfcl_case() -> None:
    for category in bfcl.CATEGORIES:
        for case in bfcl.load_cases(category):
            tools = [bfcl.tool_spec(f) for f in case.functions]
            assert compiled_grammar(tools, "required") is not None, case.id


# -- eval toolcalls end to end, on the tiny model ---------------------------------------------


@pytest.mark.model
def test_eval_toolcalls_scores_both_targets_and_records_every_case(tmp_path: Path) -> None:
    if not models.is_installed(models.TEST_MODEL):
        pytest.fail(f"run `turnout models install {models.TEST_MODEL}` (make test does it)")
    record = tmp_path / "cases.jsonl"
    report = eval_toolcalls(
        ["simple_python"], 1, ["turnout", "plain"], models.TEST_MODEL,
        threads=1, max_tokens=48, record=record,
    )
    by_target = {s.target: s for s in report.summaries}

    assert set(by_target) == {"turnout", "plain", "plain+parser"}
    assert all(s.category == "simple_python" and s.cases == 1 for s in report.summaries)
    # With the grammar and tool_choice=required even a 135M model's call is valid.
    assert by_target["turnout"].valid_rate == 1.0
    assert len(record.read_text().splitlines()) == 3

    # The record is a resume point: a second run over the same cases scores nothing again
    # and reports the recorded outcomes, summarized as the first run summarized them.
    said: list[str] = []
    again = eval_toolcalls(
        ["simple_python"], 1, ["turnout", "plain"], models.TEST_MODEL,
        threads=1, max_tokens=48, record=record, progress=said.append,
    )
    assert again.summaries == report.summaries
    assert len(record.read_text().splitlines()) == 3
    assert any("resuming" in line and "3 outcomes" in line for line in said)


def test_the_progress_line_says_how_long_is_left_from_the_recent_pace() -> None:
    assert time_left([20.0, 22.0, 18.0], 364) == "  (about 2h01m left)"
    assert time_left([20.0] * 5, 3) == "  (about 1m left)"
    assert time_left([20.0], 1) == "  (under a minute left)"
    # The recent pace counts: a slow start (loading, a busy machine) stops weighing in.
    assert time_left([300.0] * 5 + [20.0] * 20, 30) == "  (about 10m left)"
    assert time_left([], 10) == ""  # nothing timed yet (every case so far was resumed)
    assert time_left([20.0], 0) == ""


def test_a_damaged_record_is_named_with_its_line(tmp_path: Path) -> None:
    record = tmp_path / "cases.jsonl"
    record.write_text('{"id": "simple_python_0", "category": "simple_pyth')
    with pytest.raises(UsageError, match=r"cases.jsonl:1 .*delete that line"):
        # Read before any model is loaded: the spec names none that exists.
        eval_toolcalls(["simple_python"], 1, ["turnout"], "no-such-model", record=record)


def test_the_plain_target_is_refused_for_a_model_without_the_openai_wire_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    with pytest.raises(UsageError, match="--target plain sends the OpenAI chat-completions format"):
        eval_toolcalls(["simple_python"], 1, ["turnout", "plain"], "anthropic/claude-sonnet-4-5")
