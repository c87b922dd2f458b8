"""`turnout bench agent`: its summary arithmetic, its argument errors, and the routed
configuration with a real `llama_cpp.server` behind the policy's hard target."""

from __future__ import annotations

from pathlib import Path

import pytest
from turnout.agent.cli.main import main
from turnout.bench import agent as bench_agent
from turnout.bench.agent import BenchConfig, ConfigModels, TaskResult, run_benchmark, summarise
from turnout.bench.agent_tasks import load_tasks
from turnout.runtimes.local import models
from turnout.runtimes.testing.fake import ScriptedModel


def result(config: str, task: str, kind: str, passed: bool, wall: float) -> TaskResult:
    return TaskResult(
        config=config, task=task, kind=kind, bug_class="x", passed=passed,
        exit_status="tests_passed" if passed else "no_candidate_passed", wall_seconds=wall,
        first_edit_seconds=wall if passed else 0.0, steps=1, candidates=1, prompt_tokens=100,
        cached_prompt_tokens=10, completion_tokens=20, model_seconds=wall / 2,
        verify_summary="", model="m",
    )


def test_the_summary_counts_pass_rates_and_median_walls_per_configuration_and_kind() -> None:
    rows = summarise([
        result("greedy", "a", "bug", True, 10), result("greedy", "b", "bug", False, 30),
        result("greedy", "c", "feature", True, 20), result("sampling", "a", "bug", True, 50),
    ])
    by = {(r["config"], r["kind"]): r for r in rows}
    assert by["greedy", "bug"]["pass_rate"] == 0.5 and by["greedy", "bug"]["median_wall_s"] == 20
    assert by["greedy", "bug"]["median_wall_passing_s"] == 10
    assert by["greedy", "all"]["passed"] == 2 and by["greedy", "all"]["tasks"] == 3
    assert by["sampling", "all"]["tokens"] == 120 and ("sampling", "feature") not in by


def test_an_unknown_configuration_or_task_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "agent", "--configs", "greedy,nope"]) == 2
    assert "unknown nope" in capsys.readouterr().err
    assert main(["bench", "agent", "--tasks", "no_such_task"]) == 2
    assert "no_such_task" in capsys.readouterr().err


@pytest.mark.model
def test_the_routed_configuration_sends_greedy_tries_to_the_server_and_samples_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not models.is_installed("smollm2-135m"):
        pytest.fail("run `turnout models install smollm2-135m` (make test does it)")
    # The smallest model serves the hard work; a scripted model stands in process for the rest.
    monkeypatch.setitem(bench_agent.CONFIGS, "tiny-routed", BenchConfig(
        agent={"samples": 1, "reflections": 0, "alternatives": 0, "mutants": 0, "max_tokens": 64},
        model="scripted", hard="smollm2-135m",
    ))
    local = ScriptedModel(["no idea"], name="scripted")
    opened: list[str] = []

    def opener(name: str) -> ScriptedModel:
        opened.append(name)
        return local

    [task] = load_tasks(names=["free_shipping"])
    [result] = run_benchmark([task], ["tiny-routed"], ConfigModels(opener, "unused"),
                             tmp_path / "record.jsonl", lambda _: None, threads=2)

    assert opened == ["scripted"]
    # The greedy first try is hard work: the box (the server) wrote it, tokens counted there;
    # the sampled try is repetitive: the in-process model answered it.
    assert result.tokens_by_target.get("box", 0) > 0 and result.tokens_by_target.get("local", 0) > 0
    assert [r.temperature for r in local.requests] == [0.7]
    assert (tmp_path / "record.jsonl").read_text().count('"tiny-routed"') == 1
