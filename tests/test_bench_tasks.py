"""The agent benchmark's tasks are sound: each fails as shipped and passes with its solution.

No model runs here. A task whose tests pass before the fix, or fail after it, would score an
agent on the benchmark's mistake instead of its own, so every task is checked end to end with
the same prepare/verify path a benchmark run uses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from turnout.bench.agent_tasks import (
    BUG_CLASSES,
    AgentTask,
    apply_solution,
    load_tasks,
    prepare_workspace,
    run_pytest,
    verify,
)

TASKS = load_tasks()
BY_NAME = {t.name: t for t in TASKS}


def _files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_suite_is_big_and_varied_enough():
    kinds = Counter(t.kind for t in TASKS)
    classes = Counter(t.bug_class for t in TASKS if t.kind == "bug")
    assert len(TASKS) >= 32
    assert kinds["bug"] >= 26
    assert kinds["feature"] >= 6
    assert {c: classes[c] for c in BUG_CLASSES} == {c: max(classes[c], 3) for c in BUG_CLASSES}
    assert all(t.bug_class == "feature" for t in TASKS if t.kind == "feature")
    assert [t.name for t in TASKS] == sorted(t.name for t in TASKS)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_task_fails_as_shipped_and_passes_with_its_solution(name: str, tmp_path: Path):
    task = BY_NAME[name]
    repo_files = _files(task.repo)
    solution_files = _files(task.solution)
    assert solution_files, "a solution changes at least one file"
    assert solution_files <= repo_files, "solution/ holds corrected repo files only"
    for rel in solution_files:
        assert (task.solution / rel).read_bytes() != (task.repo / rel).read_bytes(), rel
    if task.hidden.is_dir():
        assert not _files(task.hidden) & repo_files, "a hidden test would replace a visible one"

    workspace = prepare_workspace(task, tmp_path / "ws")
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=workspace, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""

    if task.kind == "feature":
        visible = run_pytest(workspace)
        assert visible.passed, f"visible tests fail before the feature:\n{visible.output_tail}"

    before = verify(task, workspace)
    assert not before.passed, f"passes without the fix: {before.summary}"
    if task.kind == "bug":
        # Failing tests, not a broken collection: the agent must find a bug, not a typo.
        assert before.exit_code == 1, before.output_tail
        assert "failed" in before.summary

    apply_solution(task, workspace)
    after = verify(task, workspace)
    assert after.passed, f"fails with the solution:\n{after.output_tail}"
    assert "passed" in after.summary and "failed" not in after.summary


def test_verify_puts_back_tests_the_agent_edited(tmp_path: Path):
    task = BY_NAME["paginate"]
    workspace = prepare_workspace(task, tmp_path / "ws")
    test_file = workspace / "tests" / "test_listing.py"
    original = test_file.read_text()
    test_file.write_text("def test_listing():\n    assert True\n")
    (workspace / "conftest.py").write_text("collect_ignore = ['tests/test_listing.py']\n")
    (workspace / "tests" / "test_mine.py").write_text("def test_mine():\n    assert True\n")
    assert run_pytest(workspace).passed  # the rigged workspace would pass on its own

    result = verify(task, workspace)
    assert not result.passed
    assert "2 failed" in result.summary
    assert test_file.read_text() == original
    assert not (workspace / "conftest.py").exists()
    assert not (workspace / "tests" / "test_mine.py").exists()


def test_verify_restores_deleted_tests_and_copies_hidden_ones(tmp_path: Path):
    task = BY_NAME["stats_median"]
    workspace = prepare_workspace(task, tmp_path / "ws")
    shutil.rmtree(workspace / "tests")
    apply_solution(task, workspace)
    result = verify(task, workspace)
    assert result.passed, result.output_tail
    assert (workspace / "tests" / "test_stats.py").is_file()
    assert (workspace / "tests" / "test_median_hidden.py").is_file()


def test_verify_does_not_write_through_a_linked_tests_folder(tmp_path: Path):
    task = BY_NAME["paginate"]
    workspace = prepare_workspace(task, tmp_path / "ws")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(workspace / "tests")
    (workspace / "tests").symlink_to(elsewhere, target_is_directory=True)
    result = verify(task, workspace)
    assert not result.passed
    assert not (workspace / "tests").is_symlink()
    assert list(elsewhere.iterdir()) == []


def test_prepare_workspace_refuses_a_folder_in_use(tmp_path: Path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        prepare_workspace(TASKS[0], tmp_path / "ws")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_workspace(TASKS[0], empty) == empty


def _fake_task(root: Path, name: str, spec: object) -> Path:
    folder = root / name
    (folder / "repo").mkdir(parents=True)
    (folder / "solution").mkdir()
    (folder / "task.json").write_text(json.dumps(spec))
    return folder


def test_load_tasks_names_the_folder_and_the_key(tmp_path: Path):
    _fake_task(tmp_path, "broken", {"task": "fix it", "kind": "bug", "bug_class": "typo"})
    with pytest.raises(ValueError, match=r"broken.*bug_class"):
        load_tasks(tmp_path)
    (tmp_path / "broken" / "task.json").write_text(json.dumps({"task": "x", "kind": "chore"}))
    with pytest.raises(ValueError, match=r"broken.*key kind.*key bug_class"):
        load_tasks(tmp_path)


def test_load_tasks_selects_by_name():
    picked = load_tasks(names=["slugify", "paginate"])
    assert [t.name for t in picked] == ["paginate", "slugify"]
    assert isinstance(picked[0], AgentTask)
    with pytest.raises(ValueError, match="no_such_task"):
        load_tasks(names=["slugify", "no_such_task"])


def test_verify_kills_a_hanging_test_run(tmp_path: Path):
    folder = _fake_task(
        tmp_path, "hangs", {"task": "wait", "kind": "bug", "bug_class": "off_by_one"}
    )
    (folder / "repo" / "test_sleep.py").write_text(
        "import time\n\n\ndef test_sleep():\n    time.sleep(60)\n"
    )
    [task] = load_tasks(tmp_path)
    workspace = prepare_workspace(task, tmp_path / "ws")
    result = verify(task, workspace, timeout=2)
    assert not result.passed
    assert result.exit_code == -9
    assert result.summary == "timed out after 2s"
