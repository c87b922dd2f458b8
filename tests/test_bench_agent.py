"""`turnout bench agent`: its summary arithmetic and its argument errors (no model needed)."""

from __future__ import annotations

import pytest
from turnout.agent.cli.main import main
from turnout.bench.agent import TaskResult, summarise


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
