"""Cost beside tokens: a run on a target with prices in turnout.toml says what its replies cost
(a scripted model answering as that target; real MCP servers and pytest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_agent_loop import GREEDY_ONLY, WRONG, calc_with, whole
from turnout.agent.run import render, run_task
from turnout.runtimes.testing.fake import ScriptedModel


def test_a_run_on_a_priced_target_reports_its_cost_beside_the_tokens(calc_repo: Path) -> None:
    (calc_repo / "turnout.toml").write_text(
        '[targets.local]\nruntime = "llama_cpp"\nlocation = "local"\n'
        "cost_per_mtok_input = 3.0\ncost_per_mtok_output = 15.0\n", encoding="utf-8")
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, WRONG))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY, run_id="p1")

    expected = (report.tokens.prompt * 3.0 + report.tokens.completion * 15.0) / 1_000_000
    assert report.tokens.total > 0 and report.cost_usd == pytest.approx(expected)
    assert f"cost: ${expected:.4f}" in render(report)
    # A resumed run adds to what was spent before, kept in the run's directory.
    again = run_task("make the tests pass", calc_repo, ScriptedModel([]), config=GREEDY_ONLY,
                     run_id="p1", resume=True)
    assert again.cost_usd == pytest.approx(expected)


def test_an_unpriced_run_shows_no_cost(calc_repo: Path) -> None:
    report = run_task("make the tests pass", calc_repo, ScriptedModel([whole("calc.py", calc_with(calc_repo, WRONG))]),
                      config=GREEDY_ONLY)
    assert report.cost_usd == 0 and "cost:" not in render(report)
