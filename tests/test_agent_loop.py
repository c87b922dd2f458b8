"""The agent loop end to end with real MCP servers and a scripted model."""

from __future__ import annotations

import json
from pathlib import Path

from turnout.agent.loop import AgentConfig
from turnout.agent.run import run_task
from turnout.runtimes.fake import ScriptedModel

BUGGY = "    return total(values) / (len(values) - 1)"
FIXED = "    return total(values) / len(values)"


def call(name: str, **arguments: object) -> str:
    return "```json\n" + json.dumps({"name": name, "arguments": arguments}) + "\n```"


def test_a_scripted_run_survives_a_malformed_call_and_a_tool_error_then_passes(calc_repo: Path) -> None:
    model = ScriptedModel(
        [
            # Missing the required `old` and `new`: must be rejected, never run.
            call("replace_in_file", path="calc.py"),
            # Valid call, but `old` is not in the file: the edit tool reports an error.
            call("replace_in_file", path="calc.py", old="return a - b", new="return a + b"),
            call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED),
        ]
    )
    report = run_task("make the tests pass", calc_repo, model, config=AgentConfig(max_steps=5))

    assert report.exit_status == "tests_passed"
    assert report.tests_passed and not report.tests_before.passed
    assert report.steps == 3
    assert report.invalid_calls == 1
    assert report.tool_errors == 1
    assert report.files_changed == ["calc.py"]
    assert f"-{BUGGY}" in report.diff and f"+{FIXED}" in report.diff
    assert FIXED in (calc_repo / "calc.py").read_text()


def test_the_history_sent_back_never_contains_the_malformed_call(calc_repo: Path) -> None:
    malformed = call("replace_in_file", path="calc.py")
    model = ScriptedModel([malformed, call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED)])
    run_task("make the tests pass", calc_repo, model, config=AgentConfig(max_steps=3))

    second = model.requests[1].messages
    assert all(m.role != "assistant" for m in second), "the rejected reply must not be replayed"
    assert "old" in second[-1].content and "not valid" in second[-1].content


def test_the_first_prompt_carries_the_failure_and_the_code_it_names(calc_repo: Path) -> None:
    model = ScriptedModel([call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED)])
    run_task("make the tests pass", calc_repo, model)

    prompt = model.requests[0].messages[-1].content
    assert "failed" in prompt
    assert "File calc.py:" in prompt and BUGGY in prompt
    assert {t.name for t in model.requests[0].tools} >= {"read_file", "replace_in_file", "run_tests"}


def test_a_model_that_only_talks_runs_out_of_steps_and_changes_nothing(calc_repo: Path) -> None:
    model = ScriptedModel(["I think the bug is in mean()."] * 3)
    report = run_task("make the tests pass", calc_repo, model, config=AgentConfig(max_steps=3))

    assert report.exit_status == "max_steps"
    assert report.steps == 3 and not report.tests_passed
    assert report.files_changed == [] and report.diff == ""
    nudges = [m.content for m in model.requests[-1].messages if m.role == "user"]
    assert any("still fail" in n for n in nudges)


def test_a_repo_whose_tests_pass_needs_no_model_call(calc_repo: Path) -> None:
    calc = calc_repo / "calc.py"
    calc.write_text(calc.read_text().replace(BUGGY, FIXED))
    model = ScriptedModel([])
    report = run_task("make the tests pass", calc_repo, model)

    assert report.exit_status == "already_passing" and report.steps == 0
    assert model.requests == []


def test_each_run_writes_json_events_and_a_report(calc_repo: Path) -> None:
    model = ScriptedModel([call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED)])
    report = run_task("make the tests pass", calc_repo, model, run_id="r1")

    run_dir = calc_repo / ".turnout" / "runs" / "r1"
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "run_start" and names[-1] == "run_end"
    assert "route" in names and "tests_before" in names
    route = next(e for e in events if e["event"] == "route")
    assert route["target"] == "local" and route["reason"]
    assert all(e["run_id"] == "r1" for e in events)
    assert json.loads((run_dir / "report.json").read_text())["exit_status"] == report.exit_status


def test_an_edit_to_a_test_file_is_refused_and_the_test_stays_as_it_was(calc_repo: Path) -> None:
    test_file = calc_repo / "tests" / "test_calc.py"
    before = test_file.read_bytes()
    model = ScriptedModel(
        [
            call("replace_in_file", path="tests/test_calc.py", old="== 5", new="== 6.666666666666667"),
            call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED),
        ]
    )
    report = run_task("make the tests pass", calc_repo, model, config=AgentConfig(max_steps=3))

    assert test_file.read_bytes() == before
    assert report.exit_status == "tests_passed" and report.files_changed == ["calc.py"]
    refusal = model.requests[1].messages[-1]
    assert refusal.role == "tool" and "test file" in refusal.content


def test_a_run_stopped_by_a_failure_resumes_from_its_last_completed_step(calc_repo: Path) -> None:
    wrong = call("replace_in_file", path="calc.py", old="return a - b", new="return a + b")
    # The script ends after one reply, so the second model call fails like a crashed runtime.
    first = run_task("make the tests pass", calc_repo, ScriptedModel([wrong]), run_id="r2")
    assert first.exit_status == "error" and "script" in first.error
    assert first.steps == 1 and first.tool_errors == 1

    second_model = ScriptedModel([call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED)])
    resumed = run_task("make the tests pass", calc_repo, second_model, run_id="r2", resume=True)

    assert resumed.exit_status == "tests_passed" and resumed.steps == 2
    assert resumed.tool_errors == 1  # carried over from the first process, not recounted
    # The resumed model sees the whole conversation so far, including the failed edit.
    history = second_model.requests[0].messages
    assert any(m.role == "tool" and m.content.startswith("ERROR:") for m in history)


def test_a_command_of_the_models_choosing_is_not_run_without_approval(calc_repo: Path) -> None:
    model = ScriptedModel(
        [
            call("run_tests", command="touch pwned && python -m pytest -q"),
            call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED),
        ]
    )
    report = run_task("make the tests pass", calc_repo, model, run_id="r5", config=AgentConfig(max_steps=3))

    # auto-edit (the default) with nobody to ask: refused, the model told, the run goes on.
    assert not (calc_repo / "pwned").exists()
    refusal = model.requests[1].messages[-1]
    assert refusal.role == "tool" and "did not approve" in refusal.content
    assert report.exit_status == "tests_passed"  # the loop's own test runs need no approval
    events = (calc_repo / ".turnout" / "runs" / "r5" / "events.jsonl").read_text()
    assert '"event": "approval"' in events and "run_tests" in events


def test_full_auto_runs_the_models_command(calc_repo: Path) -> None:
    model = ScriptedModel([call("run_tests", command="touch ran && python -m pytest -q")])
    run_task(
        "make the tests pass", calc_repo, model, config=AgentConfig(max_steps=1),
        approval_mode="full-auto",
    )
    assert (calc_repo / "ran").exists()


def test_the_repository_policy_sets_the_approval_mode_and_its_deny_is_final(calc_repo: Path) -> None:
    (calc_repo / "turnout.toml").write_text(
        '[approvals]\nmode = "full-auto"\n\n[approvals.tools]\nwrite_file = "deny"\n', encoding="utf-8"
    )
    model = ScriptedModel(
        [
            call("run_tests", command="touch ran && python -m pytest -q"),
            call("write_file", path="calc.py", content="oops\n"),
            call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED),
        ]
    )
    report = run_task("make the tests pass", calc_repo, model, config=AgentConfig(max_steps=4))

    assert (calc_repo / "ran").exists()  # full-auto from the policy: the model's command ran
    denied = model.requests[2].messages[-1]
    assert denied.role == "tool" and "denied by the approval policy" in denied.content
    assert report.exit_status == "tests_passed"
    # The command line still wins over the policy's mode.
    (calc_repo / "ran").unlink()
    calc = calc_repo / "calc.py"
    calc.write_text(calc.read_text().replace(FIXED, BUGGY))
    again = ScriptedModel([call("run_tests", command="touch ran"), call("replace_in_file", path="calc.py", old=BUGGY, new=FIXED)])
    run_task("make the tests pass", calc_repo, again, config=AgentConfig(max_steps=3), approval_mode="auto-edit")
    assert not (calc_repo / "ran").exists()
