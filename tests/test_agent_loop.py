"""The agent loop end to end: real MCP servers, real pytest runs, a scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from turnout.agent import loop
from turnout.agent.loop import AgentConfig, asks_only_for_green_tests
from turnout.agent.run import run_task
from turnout.agent.testrun import TestOutcome
from turnout.agent.workspace import failure_count
from turnout.runtimes.base import ChatRequest
from turnout.runtimes.testing.fake import ScriptedModel

BUGGY = "    return total(values) / (len(values) - 1)"
FIXED = "    return total(values) / len(values)"
WRONG = "    return total(values) / (len(values) + 1)"


def whole(path: str, text: str, prose: str = "") -> str:
    return f"{prose}\n{path}\n```python\n{text}```\n"


def calc_with(repo: Path, line: str) -> str:
    return (repo / "calc.py").read_text().replace(BUGGY, line)


GREEDY_ONLY = AgentConfig(samples=0, reflections=0, alternatives=0, mutants=0, spec_tests=False)


def test_the_winning_candidate_lands_whole_and_the_report_shows_it(calc_repo: Path) -> None:
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, FIXED))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY, run_id="w1")

    assert report.exit_status == "tests_passed" and report.tests_passed
    assert not report.tests_before.passed
    assert (calc_repo / "calc.py").read_text() == calc_with(calc_repo, FIXED)
    assert report.files_changed == ["calc.py"]
    assert f"-{BUGGY}" in report.diff and f"+{FIXED}" in report.diff
    assert [c.status for c in report.candidates] == ["passed"]
    events = [json.loads(x) for x in (calc_repo / ".turnout/runs/w1/events.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "run_start" and names[-1] == "run_end"
    assert {"tests_before", "localized", "route", "model_reply", "candidate", "landed"} <= set(names)
    assert json.loads((calc_repo / ".turnout/runs/w1/report.json").read_text())["exit_status"] == "tests_passed"


def test_a_candidate_that_fails_leaves_the_users_tree_unchanged(calc_repo: Path) -> None:
    before = (calc_repo / "calc.py").read_bytes()
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, WRONG))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY)

    assert report.exit_status == "no_candidate_passed" and not report.tests_passed
    assert (calc_repo / "calc.py").read_bytes() == before
    assert report.files_changed == [] and report.diff == ""
    assert report.candidates[0].status == "failed" and "failed" in report.candidates[0].summary


def test_when_greedy_fails_sampled_candidates_are_tried_and_the_passing_one_lands(calc_repo: Path) -> None:
    wrong, right = calc_with(calc_repo, WRONG), calc_with(calc_repo, FIXED)
    model = ScriptedModel([whole("calc.py", wrong), whole("calc.py", wrong), whole("calc.py", right)])
    config = AgentConfig(mutants=0, samples=2, reflections=0, alternatives=0, seed=7)
    report = run_task("make the tests pass", calc_repo, model, config=config)

    assert report.exit_status == "tests_passed"
    assert [c.status for c in report.candidates] == ["failed", "duplicate", "passed"]
    greedy, first_sample, second_sample = model.requests
    assert greedy.temperature == 0 and greedy.n == 1
    assert first_sample.temperature > 0 and first_sample.n == 2 and first_sample.seed == 107
    # A runtime that returns one completion per call is asked again with the next seed.
    assert second_sample.seed == 108 and second_sample.n == 1
    assert first_sample.messages == greedy.messages  # the same prompt: its KV cache is reused


def test_a_reflection_round_shows_the_best_try_and_what_still_fails(calc_repo: Path) -> None:
    wrong, right = calc_with(calc_repo, WRONG), calc_with(calc_repo, FIXED)
    model = ScriptedModel([whole("calc.py", wrong), whole("calc.py", right)])
    report = run_task("make the tests pass", calc_repo, model,
                      config=AgentConfig(mutants=0, samples=0, reflections=1, alternatives=0))

    assert report.exit_status == "tests_passed"
    reflection = model.requests[1].messages
    assert reflection[-2].role == "assistant" and WRONG in reflection[-2].content
    assert reflection[-1].role == "user" and "still fail" in reflection[-1].content
    assert "assert" in reflection[-1].content  # the failing output, not just a count


def test_a_model_that_only_talks_stops_cleanly_with_its_evidence(calc_repo: Path) -> None:
    model = ScriptedModel(["I think the bug is in mean()."] * 6)
    report = run_task("make the tests pass", calc_repo, model, config=AgentConfig(mutants=0, samples=2, reflections=1))

    assert report.exit_status == "no_candidate_passed"
    assert all(c.status == "unreadable" for c in report.candidates)
    assert report.files_changed == [] and not report.tests_passed
    # greedy, greedy alternatives, two samples of each; no reflection on nothing
    assert len(model.requests) == 6


def test_an_edit_to_a_test_file_is_dropped_and_the_test_stays_as_it_was(calc_repo: Path) -> None:
    test_file = calc_repo / "tests" / "test_calc.py"
    before = test_file.read_bytes()
    cheat = test_file.read_text().replace("== 5", "== 6.666666666666667")
    model = ScriptedModel([whole("tests/test_calc.py", cheat) + whole("calc.py", calc_with(calc_repo, FIXED))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY)

    assert test_file.read_bytes() == before
    assert report.exit_status == "tests_passed" and report.files_changed == ["calc.py"]


def test_a_reply_with_only_the_fixed_function_keeps_the_rest_of_the_file(calc_repo: Path) -> None:
    fixed_mean = (
        "def mean(values: list[float]) -> float:\n"
        '    """Arithmetic mean of a non-empty list of values."""\n'
        "    if not values:\n"
        '        raise ValueError("mean() needs at least one value")\n'
        f"{FIXED}\n"
    )
    model = ScriptedModel([whole("calc.py", fixed_mean, prose="The divisor is off by one.")])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY)

    assert report.exit_status == "tests_passed"
    assert (calc_repo / "calc.py").read_text() == calc_with(calc_repo, FIXED)


def test_a_search_replace_block_whose_old_differs_in_indentation_applies(calc_repo: Path) -> None:
    block = f"calc.py\n<<<<<<< SEARCH\n{BUGGY.strip()}\n=======\n{FIXED.strip()}\n>>>>>>> REPLACE\n"
    report = run_task("make the tests pass", calc_repo, ScriptedModel([block]), config=GREEDY_ONLY)

    assert report.exit_status == "tests_passed"
    assert FIXED + "\n" in (calc_repo / "calc.py").read_text()


def test_the_first_prompt_holds_the_module_a_src_layout_test_imports(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    (repo / "src").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "src" / "pricing.py").write_text("def net(gross):\n    return gross * 1.2\n")
    (repo / "tests" / "test_pricing.py").write_text(
        "import sys\nfrom pathlib import Path\n"
        "sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'src'))\n"
        "from pricing import net\n\n\ndef test_net():\n    assert net(12) == 10\n"
    )
    model = ScriptedModel([whole("src/pricing.py", "def net(gross):\n    return gross / 1.2\n")])
    report = run_task("make the tests pass", repo, model, config=GREEDY_ONLY)

    prompt = model.requests[0].messages[-1].content
    assert "src/pricing.py\n```python\ndef net(gross):\n    return gross * 1.2" in prompt
    assert "assert" in prompt  # the failure itself
    assert report.exit_status == "tests_passed"


def test_a_repo_whose_tests_pass_needs_no_model_call_when_the_task_is_green_tests(calc_repo: Path) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    model = ScriptedModel([])
    report = run_task("make the tests pass", calc_repo, model)

    assert report.exit_status == "already_passing" and report.steps == 0
    assert model.requests == []


def test_a_task_beyond_a_failing_test_is_done_and_summarised(calc_repo: Path) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    added = "def median(values):\n    ordered = sorted(values)\n    return ordered[len(ordered) // 2]\n"
    reply = whole("calc.py", added) + "\nI added median(), which sorts the values and takes the middle one.\n"
    model = ScriptedModel([reply])
    report = run_task("add a median(values) function to calc.py", calc_repo, model, config=GREEDY_ONLY)

    assert report.exit_status == "done" and report.tests_passed
    text = (calc_repo / "calc.py").read_text()
    assert "def median(values):" in text and "def spread(" in text  # added, nothing lost
    assert "median()" in report.summary
    assert "tests pass now" in model.requests[0].messages[-1].content


def test_which_tasks_ask_for_nothing_but_green_tests() -> None:
    assert asks_only_for_green_tests("make the tests pass")
    assert asks_only_for_green_tests("Fix the failing tests in tests/test_api.py")
    assert not asks_only_for_green_tests("add a --verbose flag to cli.py")
    assert not asks_only_for_green_tests("make parse_duration accept an 'h' suffix; tests must pass")


def test_a_policy_that_denies_edits_keeps_the_winner_out_of_the_tree(calc_repo: Path) -> None:
    (calc_repo / "turnout.toml").write_text(
        '[approvals]\nmode = "full-auto"\n\n[approvals.tools]\napply_patch = "deny"\n', encoding="utf-8"
    )
    before = (calc_repo / "calc.py").read_bytes()
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, FIXED))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY)

    assert report.exit_status == "error" and "denied" in report.error
    assert (calc_repo / "calc.py").read_bytes() == before


def test_the_requests_carry_no_tools_and_the_greedy_one_asks_for_the_suffix_drafter(calc_repo: Path) -> None:
    seen: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        seen.append(request)
        return whole("calc.py", calc_with(calc_repo, FIXED))

    run_task("make the tests pass", calc_repo, ScriptedModel([reply]), config=GREEDY_ONLY)
    assert seen[0].tools == [] and seen[0].drafter == "suffix" and seen[0].temperature == 0


def test_each_fix_of_an_alternatives_reply_is_tried_on_its_own(calc_repo: Path) -> None:
    def block(new: str) -> str:
        return f"calc.py\n<<<<<<< SEARCH\n{BUGGY}\n=======\n{new}\n>>>>>>> REPLACE\n"

    greedy = whole("calc.py", calc_with(calc_repo, WRONG))
    model = ScriptedModel([greedy, block(WRONG) + "\n" + block(FIXED)])
    report = run_task("make the tests pass", calc_repo, model,
                      config=AgentConfig(mutants=0, samples=0, reflections=0, alternatives=3))

    assert report.exit_status == "tests_passed"
    assert [c.status for c in report.candidates] == ["failed", "duplicate", "passed"]
    assert "up to 3 different fixes" in model.requests[1].messages[-1].content
    # The context is the same text in both requests: only the answer form after it differs.
    context = model.requests[0].messages[-1].content.split("Find the bug")[0]
    assert model.requests[1].messages[-1].content.startswith(context)


def test_the_first_prompt_shows_what_the_code_did_while_the_failing_test_ran(calc_repo: Path) -> None:
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, FIXED))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY)

    assert report.exit_status == "tests_passed"
    prompt = model.requests[0].messages[1].content
    assert "What the code under test did while tests/test_calc.py::" in prompt
    # The buggy line, with the call that ran it: the reader sees how the wrong mean came out.
    assert "calc.py:9 mean(values=[" in prompt
    assert f"{BUGGY.strip()}" in prompt.split("What the code under test did")[1]


def test_a_candidate_that_does_not_import_ranks_below_one_that_fails_a_test() -> None:
    broken = TestOutcome(exit_code=2, summary="1 error in 0.16s")
    two_fail = TestOutcome(exit_code=1, summary="2 failed, 1 passed in 0.05s")
    assert failure_count(two_fail) == 2
    assert failure_count(broken) > failure_count(two_fail)
    assert failure_count(TestOutcome(exit_code=1, summary="1 failed, 2 errors in 0.1s")) == 3


# Its examples in words, not code: the model writes the task's tests (examples in code are
# taken as they stand, tested below).
MEDIAN_TASK = "add median(values) to calc.py: the median of 3, 1, 2 is 2 and that of 4, 1, 3, 2 is 2.5"
MEDIAN_SPEC = (
    "```python\nfrom calc import median\n\n\ndef test_odd():\n    assert median([3, 1, 2]) == 2\n\n\n"
    "def test_even():\n    assert median([4, 1, 3, 2]) == 2.5\n```\n"
)
MEDIAN_WRONG = "def median(values):\n    ordered = sorted(values)\n    return ordered[len(ordered) // 2]\n"
MEDIAN_RIGHT = (
    "def median(values):\n    ordered = sorted(values)\n    middle = len(ordered) // 2\n"
    "    if len(ordered) % 2:\n        return ordered[middle]\n"
    "    return (ordered[middle - 1] + ordered[middle]) / 2\n"
)


def test_a_task_run_checks_candidates_against_tests_written_from_the_task(calc_repo: Path) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    model = ScriptedModel([MEDIAN_SPEC, whole("calc.py", MEDIAN_WRONG), whole("calc.py", MEDIAN_RIGHT)])
    config = AgentConfig(samples=1, reflections=0, alternatives=0)
    report = run_task(MEDIAN_TASK, calc_repo, model, config=config)

    assert report.exit_status == "done" and report.tests_passed
    # The greedy try keeps the suite green but gets the even case wrong: the task's test says so.
    assert [c.status for c in report.candidates] == ["failed", "passed"]
    assert "1 failed" in report.candidates[0].summary
    assert "return (ordered[middle - 1] + ordered[middle]) / 2" in (calc_repo / "calc.py").read_text()
    # The tests written from the task check the work; they are not part of the change.
    assert report.files_changed == ["calc.py"]
    assert not (calc_repo / "tests" / loop.SPEC_FILE).exists()
    spec_prompt = model.requests[0].messages[-1].content
    assert "from calc import mean, spread, total" in spec_prompt  # the existing tests' imports
    assert "def test_even" in model.requests[1].messages[-1].content  # every round sees them


def test_the_examples_a_task_states_in_code_judge_candidates_even_when_the_models_tests_miss_them(
    calc_repo: Path,
) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    task = "add median(values) to calc.py, e.g. median([3, 1, 2]) == 2 and `median([4, 1, 3, 2])` returns 2.5"
    # The model's tests check only the odd case, which the wrong try gets right.
    odd_only = "```python\nfrom calc import median\n\n\ndef test_odd():\n    assert median([3, 1, 2]) == 2\n```\n"
    model = ScriptedModel([odd_only, whole("calc.py", MEDIAN_WRONG), whole("calc.py", MEDIAN_RIGHT)])
    report = run_task(task, calc_repo, model, config=AgentConfig(samples=1, reflections=0, alternatives=0))

    assert [c.status for c in report.candidates] == ["failed", "passed"]
    assert "1 failed" in report.candidates[0].summary  # the even example, from the task's words
    assert "def middle" not in (calc_repo / "calc.py").read_text() and "middle - 1" in (calc_repo / "calc.py").read_text()
    prompt = model.requests[1].messages[-1].content
    assert "test_turnout_examples.py" in prompt and "assert median([4, 1, 3, 2]) == 2.5" in prompt
    assert not list(calc_repo.rglob("test_turnout_examples.py"))  # never in the user's tree


def test_when_no_try_passes_the_models_tests_the_one_passing_the_tasks_own_examples_lands(calc_repo: Path) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    task = "add median(values) to calc.py; median([4, 1, 3, 2]) == 2.5"
    # The model's tests get the even case wrong; the wrong try passes them but not the example.
    wrong_spec = "```python\nfrom calc import median\n\n\ndef test_even():\n    assert median([4, 1, 3, 2]) == 3\n```\n"
    model = ScriptedModel([wrong_spec, whole("calc.py", MEDIAN_WRONG), whole("calc.py", MEDIAN_RIGHT)])
    report = run_task(task, calc_repo, model, config=AgentConfig(samples=1, reflections=0, alternatives=0))

    assert [c.status for c in report.candidates] == ["failed", "failed"]
    assert report.exit_status == "done"
    assert "middle - 1" in (calc_repo / "calc.py").read_text()  # the right one, by the task's example


def test_a_task_run_whose_tries_all_miss_the_tasks_tests_lands_the_closest_green_one(calc_repo: Path) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    broken = "def median(values):\n    return values[0]\n\n\ndef total(values):\n    return 0\n"
    model = ScriptedModel([MEDIAN_SPEC, whole("calc.py", broken), whole("calc.py", MEDIAN_WRONG)])
    config = AgentConfig(samples=1, reflections=0, alternatives=0)
    report = run_task(MEDIAN_TASK, calc_repo, model, config=config)

    # The first try breaks the repository's own tests, so it never lands; the second keeps them
    # green and is the closest to the task's tests, so it lands, and the summary says what fails.
    assert [c.status for c in report.candidates] == ["failed", "failed"]
    assert report.exit_status == "done" and report.tests_passed
    assert "return ordered[len(ordered) // 2]" in (calc_repo / "calc.py").read_text()
    assert "Of the checks written from the task, 1 failed" in report.summary


def test_a_candidate_whose_task_tests_do_not_import_is_judged_by_the_repositorys_tests(calc_repo: Path) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    # The candidate names the function differently: the task's tests stop pytest at collection.
    other = MEDIAN_RIGHT.replace("def median", "def middle_value")
    model = ScriptedModel([MEDIAN_SPEC, whole("calc.py", other)])
    report = run_task(MEDIAN_TASK, calc_repo, model, config=GREEDY_ONLY.model_copy(update={"spec_tests": True}))

    assert [c.status for c in report.candidates] == ["failed"]
    assert report.exit_status == "done"  # green without the task's tests, so it is the fallback
    assert "def middle_value" in (calc_repo / "calc.py").read_text()


def test_a_spec_reply_without_a_test_is_dropped_and_the_run_goes_on(calc_repo: Path) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    model = ScriptedModel(["I would test median.", whole("calc.py", MEDIAN_RIGHT)])
    config = GREEDY_ONLY.model_copy(update={"spec_tests": True, "spec_tries": 1})
    report = run_task(MEDIAN_TASK, calc_repo, model, config=config)

    assert report.exit_status == "done" and [c.status for c in report.candidates] == ["passed"]
    assert "Tests written from the task" not in model.requests[1].messages[-1].content


def test_when_the_greedy_reply_fails_a_one_token_variation_of_the_traced_lines_can_land(calc_repo: Path) -> None:
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, WRONG))])
    config = AgentConfig(samples=0, reflections=0, alternatives=0, mutants=60)
    report = run_task("make the tests pass", calc_repo, model, config=config)

    assert report.exit_status == "tests_passed"
    assert len(model.requests) == 1  # the variations cost no model call
    winner = next(c for c in report.candidates if c.status == "passed")
    assert winner.route == "mutation" and winner.round == 1
    assert (calc_repo / "calc.py").read_text() == calc_with(calc_repo, FIXED)
    assert "without the model" in report.summary and "len(values)" in report.summary
    # Only the variations that passed the traced test alone (screened in one batch) became
    # candidates and ran the whole suite.
    events = [json.loads(x) for x in next((calc_repo / ".turnout/runs").glob("*/events.jsonl")).read_text().splitlines()]
    screen = next(e for e in events if e["event"] == "mutants")
    assert screen["screened"] and screen["count"] > screen["passed_test"] >= 1
    assert len([c for c in report.candidates if c.route == "mutation"]) <= screen["passed_test"]


def test_a_wrong_constant_set_in_another_module_is_among_the_variations(tmp_path: Path) -> None:
    # The test runs only lookup code in money.py; the wrong factor sits in rates.py, read through
    # an import under `src/` that the test file puts on sys.path.
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "tests").mkdir()
    (tmp_path / "src/shop/__init__.py").write_text("")
    rates = 'MINOR_UNITS = {\n    "eur": 100,\n    "jpy": 1,\n    "kwd": 100,\n}\nTABLES = {"minor": MINOR_UNITS}\n'
    (tmp_path / "src/shop/rates.py").write_text(rates)
    (tmp_path / "src/shop/money.py").write_text(
        "from shop.rates import TABLES\n\n\ndef to_minor(amount, currency):\n"
        "    factor = TABLES['minor'][currency]\n    return round(amount * factor)\n")
    (tmp_path / "tests/test_money.py").write_text(
        "import sys\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).parent.parent / 'src'))\n\n"
        "from shop.money import to_minor\n\n\ndef test_euro():\n    assert to_minor(1.5, 'eur') == 150\n\n\n"
        "def test_dinar_has_three_decimals():\n    assert to_minor(1.5, 'kwd') == 1500\n")
    model = ScriptedModel(["I do not know."])
    report = run_task("make the tests pass", tmp_path, model, config=AgentConfig(
        samples=0, reflections=0, alternatives=0, mutants=60))

    assert report.exit_status == "tests_passed", report.summary
    assert (tmp_path / "src/shop/rates.py").read_text() == rates.replace('"kwd": 100', '"kwd": 1000')
    assert report.files_changed == ["src/shop/rates.py"] and len(model.requests) == 1


def test_a_file_too_large_to_show_whole_is_shown_as_the_definitions_the_failing_test_ran(tmp_path: Path) -> None:
    filler = "".join(f"def helper_{i}(x):\n    '''Long.'''\n" + "    x += 1\n" * 12 + "    return x\n\n\n"
                     for i in range(40))
    source = "import math\n\nRATE = 2\n\n\n" + filler + "def target(x):\n    return x * RATE\n"
    (tmp_path / "big.py").write_text(source)
    target_line = source.splitlines().index("    return x * RATE") + 1
    config = AgentConfig(context_chars=3000)

    shown, forms = loop.choose_shown(tmp_path, ["big.py"], config, {"big.py": [target_line]})

    assert forms == {"big.py": "replace"}  # edited by SEARCH/REPLACE against the real file
    part = shown["big.py"]
    assert "def target(x):\n    return x * RATE\n" in part and "RATE = 2" in part
    assert "def helper_3" not in part and "# ... not shown: helper_0, helper_1" in part
    # Every line shown is a line of the file, so a SEARCH block copied from it matches.
    assert all(line in source.splitlines() for line in part.splitlines() if not line.startswith("# ..."))
    # Without a trace to say what ran, a file too large is left to the map, as before.
    assert loop.choose_shown(tmp_path, ["big.py"], config)[0] == {}


@pytest.mark.parametrize(("spec", "why"), [
    # Passes on the code as it is: it checks nothing the task adds.
    ("```python\nfrom calc import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n```\n",
     "pass before any change"),
    # A fixture that does not exist: no change to the code can make it run.
    ("```python\nimport calc\n\n\ndef test_odd(values):\n    assert calc.median(values) == 2\n```\n",
     "fixture 'values' not found"),
])
def test_task_tests_that_cannot_judge_a_change_are_dropped(calc_repo: Path, spec: str, why: str) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    model = ScriptedModel([spec, whole("calc.py", MEDIAN_RIGHT)])
    config = GREEDY_ONLY.model_copy(update={"spec_tests": True, "spec_tries": 1})
    report = run_task(MEDIAN_TASK, calc_repo, model, config=config, run_id="s1")

    assert report.exit_status == "done" and [c.status for c in report.candidates] == ["passed"]
    events = [json.loads(x) for x in (calc_repo / ".turnout/runs/s1/events.jsonl").read_text().splitlines()]
    assert why in next(e for e in events if e["event"] == "spec")["problem"]
    assert "Tests written from the task" not in model.requests[1].messages[-1].content


def test_tests_from_the_task_that_check_nothing_new_are_asked_for_once_more(calc_repo: Path) -> None:
    (calc_repo / "calc.py").write_text(calc_with(calc_repo, FIXED))
    useless = "```python\nfrom calc import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n```\n"
    model = ScriptedModel([useless, MEDIAN_SPEC, whole("calc.py", MEDIAN_WRONG), whole("calc.py", MEDIAN_RIGHT)])
    config = AgentConfig(samples=1, reflections=0, alternatives=0, spec_tries=2)
    report = run_task(MEDIAN_TASK, calc_repo, model, config=config)

    assert model.requests[1].temperature > 0  # the second try is sampled, not the same greedy reply
    # ... and it sees the tests that could not judge, why, and what the task adds.
    *_, shown_again, why = model.requests[1].messages
    assert shown_again.role == "assistant" and "def test_total" in shown_again.content
    assert "pass before any change" in why.content and "(median)" in why.content
    assert "def test_even" in model.requests[2].messages[-1].content  # the second try's tests are used
    assert [c.status for c in report.candidates] == ["failed", "passed"]


def test_the_first_prompt_of_a_rerun_is_the_same_text_though_the_tests_took_another_time() -> None:
    # The in-process runtime reads a prompt it has seen from disk only if it begins the same.
    from turnout.agent import prompts

    def failing(seconds: str) -> TestOutcome:
        output = (f"F.\nE   assert add(2, 2) == 5 in 0.5s\n1 failed, 1 passed in {seconds}\n")
        return TestOutcome(exit_code=1, summary=f"1 failed, 1 passed in {seconds}", output=output)

    first, second = (prompts.context_prompt("fix it", failing(t), "repair", {"calc.py": "x = 1\n"}, "")
                     for t in ("0.04s", "12.31s (0:00:12)"))

    assert first == second
    assert "1 failed, 1 passed\n" in first and "in 0.04s" not in first
    assert "assert add(2, 2) == 5 in 0.5s" in first  # only pytest's summary loses its time


@pytest.mark.parametrize("flag, drafter", [([], "suffix"), (["--drafter", "none"], "none")])
def test_run_drafter_flag_reaches_every_greedy_request(
    calc_repo: Path, monkeypatch: pytest.MonkeyPatch, flag: list[str], drafter: str,
) -> None:
    from turnout.agent import compose
    from turnout.agent.cli.main import main

    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, FIXED))])
    monkeypatch.setattr(compose, "open_local_model", lambda *a, **k: model)
    assert main(["run", "make the tests pass", "--repo", str(calc_repo), "--json", *flag]) == 0
    greedy = [r for r in model.requests if r.temperature == 0]
    assert greedy and {r.drafter for r in greedy} == {drafter}
