"""The policy's own patterns cannot hang the router: nested repetitions are refused when the
policy is read, RE2 runs what it can, and `turnout policy check` times the rest on texts made to
backtrack, in a child process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from turnout.agent.cli.main import main
from turnout.router.patterns import check_pattern, compile_pattern, runs_on_re2, trial
from turnout.router.policy import Policy, parse_policy
from turnout.router.scan import Scanner
from turnout.runtimes.errors import PolicyError


def write_policy(repo: Path, pattern: str) -> None:
    (repo / "turnout.toml").write_text(
        f"[labels.orders]\npatterns = ['{pattern}']\n", encoding="utf-8"
    )


def test_policy_check_refuses_a_nested_repetition_naming_the_pattern_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_policy(tmp_path, "(a+)+$")
    assert main(["policy", "check", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "labels.orders.patterns" in err and "'(a+)+$'" in err
    assert "exponential time" in err and "nested repetition" in err


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a*)*b", "(?:\\w+\\s?)+$", "((ab)*)+x", "(a{1,5})+$"])
def test_nested_repetitions_are_refused(pattern: str) -> None:
    assert check_pattern(pattern) is not None
    with pytest.raises(PolicyError, match="exponential time"):
        parse_policy({"labels": {"x": {"patterns": [pattern]}}}, "turnout.toml")


@pytest.mark.parametrize("pattern", ["CUST-\\d{6}", "(?:\\d+,)+\\d+", "[A-Z]{2}\\d{2}(?: ?\\d{4}){4}", "(ab)+c"])
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert check_pattern(pattern) is None
    parse_policy({"labels": {"x": {"patterns": [pattern]}}}, "turnout.toml")


def test_a_pattern_re2_can_run_takes_linear_time_even_where_python_would_backtrack() -> None:
    # Not refused by the static rule (an alternation, not a nested repetition), exponential on re.
    pattern = "(a|aa)+$"
    assert check_pattern(pattern) is None and runs_on_re2(pattern)
    started = time.perf_counter()
    assert list(compile_pattern(pattern).finditer("a" * 50_000 + "!")) == []
    assert time.perf_counter() - started < 1.0


def test_a_pattern_only_python_can_run_is_timed_by_policy_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = "(a|aa)+(?=!)$"  # the look-ahead keeps it off RE2; the alternation backtracks
    assert not runs_on_re2(slow) and check_pattern(slow) is None
    assert trial(slow, seconds=1.0) is not None
    assert trial("CUST-(?=\\d)\\d{6}", seconds=5.0) is None
    write_policy(tmp_path, slow)
    assert main(["policy", "check", "--repo", str(tmp_path)]) == 2
    assert "backtracks catastrophically" in capsys.readouterr().err


def test_the_scanner_finds_user_patterns_on_re2_with_character_offsets() -> None:
    policy = Policy.model_validate({"labels": {"orders": {"patterns": ["ORD-\\d{5}"]}}})
    [finding] = Scanner(policy).scan("é – order ORD-12345 shipped")
    assert (finding.kind, finding.label, finding.value) == ("pattern:orders", "orders", "ORD-12345")
    assert "é – order ORD-12345 shipped"[finding.start:finding.end] == "ORD-12345"
