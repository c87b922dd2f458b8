"""The agent benchmark's tasks: small Python repositories with a bug to fix or a feature to add.

Each task is a folder under `bench/tasks/`:

- `task.json`: the instruction the agent is given, the kind (`bug` or `feature`) and the bug class,
  so results can be broken down by what kind of mistake the agent had to find.
- `repo/`: the repository the agent works in (copied to a fresh workspace for every attempt).
- `solution/`: the corrected files, at their paths in `repo/`; it proves the task can be solved and
  that the tests check what the instruction asks.
- `hidden/` (feature tasks; optional for bugs): test files copied into the workspace only when the
  result is checked, so the agent cannot tailor its code to the exact assertions.

The checks here decide a pass with the task's own tests, never with the agent's: `verify` puts the
original test files back before running pytest, because an agent that cannot fix the code may
"fix" the tests instead, and a benchmark that counted that would measure nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ValidationError
from turnout.agent.testrun import is_test_file

TASKS_ROOT = Path(__file__).resolve().parent / "tasks"

# The kinds of mistake the bug tasks plant, so a score can say which ones an agent misses.
BUG_CLASSES: tuple[str, ...] = (
    "comparison",  # `<` for `<=`, the wrong operator
    "off_by_one",  # ranges, slices, indices
    "normalization",  # case, whitespace, unicode, path separators not normalized
    "wrong_constant",  # a rate, a unit factor, a default
    "missing_case",  # an unhandled branch: empty input, negatives, an enum value
    "exception",  # the wrong exception, a too-broad except, a missing raise
    "formatting",  # padding, decimal places, separators
)
FEATURE_CLASS = "feature"

# Never copied into a workspace: build debris from running a task's tests in place.
_DEBRIS = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
# Files that change what pytest runs or how: restored like the tests, so they cannot be rigged.
_PYTEST_CONFIG = frozenset({"conftest.py", "pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"})
_SUMMARY = re.compile(r"\bin \d+(?:\.\d+)?s\b")
_TAIL_CHARS = 4000


class AgentTask(BaseModel):
    """One task folder, as read from its task.json."""

    name: str
    task: str  # the instruction, in the words the agent gets
    kind: Literal["bug", "feature"]
    bug_class: str  # one of BUG_CLASSES, or "feature"
    path: Path  # the task folder

    @property
    def repo(self) -> Path:
        return self.path / "repo"

    @property
    def solution(self) -> Path:
        return self.path / "solution"

    @property
    def hidden(self) -> Path:
        return self.path / "hidden"


class _TaskFile(BaseModel):
    """task.json's schema; extra keys are refused so that a typo cannot go unnoticed."""

    model_config = {"extra": "forbid"}

    task: str
    kind: Literal["bug", "feature"]
    bug_class: str


class Verification(BaseModel):
    """The outcome of running a workspace's tests."""

    passed: bool
    exit_code: int  # pytest's; -9 when it was killed on the timeout
    summary: str  # pytest's last line, e.g. "2 failed, 3 passed in 0.05s"
    output_tail: str  # the end of pytest's output, for a report or a retry prompt


def load_tasks(root: Path | None = None, names: list[str] | None = None) -> list[AgentTask]:
    """The tasks under `root` (default: bench/tasks), sorted by name; `names` picks some.

    A broken task.json raises a ValueError naming the folder and the key, rather than surfacing
    later as an agent "failure" that is really the benchmark's.
    """
    root = Path(root) if root is not None else TASKS_ROOT
    if not root.is_dir():
        raise ValueError(f"task folder {root} does not exist")
    tasks: list[AgentTask] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        tasks.append(_load_task(folder))
    if names is not None:
        by_name = {t.name: t for t in tasks}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"unknown task name(s) in {root}: {', '.join(unknown)}")
        tasks = [by_name[n] for n in sorted(set(names))]
    return tasks


def _load_task(folder: Path) -> AgentTask:
    spec = folder / "task.json"
    if not spec.is_file():
        raise ValueError(f"{folder}: no task.json")
    try:
        data = json.loads(spec.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{spec}: not valid JSON ({e})") from None
    try:
        parsed = _TaskFile.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            (f"key {'.'.join(str(p) for p in err['loc'])}" if err["loc"] else "the file")
            + f": {err['msg']}"
            for err in e.errors()
        )
        raise ValueError(f"{spec}: {problems}") from None
    if not parsed.task.strip():
        raise ValueError(f"{spec}: key task: is empty")
    if parsed.kind == "feature" and parsed.bug_class != FEATURE_CLASS:
        raise ValueError(f"{spec}: key bug_class: a feature task's class must be 'feature'")
    if parsed.kind == "bug" and parsed.bug_class not in BUG_CLASSES:
        raise ValueError(
            f"{spec}: key bug_class: {parsed.bug_class!r} is not one of {', '.join(BUG_CLASSES)}"
        )
    if not (folder / "repo").is_dir():
        raise ValueError(f"{folder}: no repo/ folder")
    if not (folder / "solution").is_dir():
        raise ValueError(f"{folder}: no solution/ folder")
    if parsed.kind == "feature" and not (folder / "hidden").is_dir():
        raise ValueError(f"{folder}: a feature task needs a hidden/ folder of tests")
    return AgentTask(name=folder.name, path=folder, **parsed.model_dump())


def prepare_workspace(task: AgentTask, dest: Path) -> Path:
    """Copy the task's repo to `dest` as a git repository with one commit and a clean tree.

    Git gives the agent (and a report) `git diff` of exactly what it changed.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"workspace {dest} exists and is not an empty folder")
    dest.mkdir(parents=True, exist_ok=True)
    # copyfile, not copy2: fresh mtimes, so no bytecode cached for an older file can match.
    shutil.copytree(task.repo, dest, ignore=_DEBRIS, dirs_exist_ok=True, copy_function=_copy)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    git += ["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(git + args, cwd=dest, check=True, capture_output=True, timeout=60)
    return dest


def apply_solution(task: AgentTask, workspace: Path) -> None:
    """Copy the task's solution files over the workspace (for tests and sanity checks)."""
    shutil.copytree(
        task.solution, workspace, ignore=_DEBRIS, dirs_exist_ok=True, copy_function=_copy
    )


def verify(task: AgentTask, workspace: Path, timeout: float = 120) -> Verification:
    """Run the task's own tests, and its hidden ones, against the agent's code in `workspace`.

    Test files and pytest configuration are put back from the task's repo first (and ones the
    agent added are removed), so only changes to the code under test can make the tests pass.
    """
    workspace = Path(workspace)
    _restore_tests(task.repo, workspace)
    if task.hidden.is_dir():
        shutil.copytree(
            task.hidden, workspace, ignore=_DEBRIS, dirs_exist_ok=True, copy_function=_copy
        )
    return run_pytest(workspace, timeout)


def run_pytest(workspace: Path, timeout: float = 120) -> Verification:
    """`python -m pytest -q` in `workspace`, in its own process group, killed on the timeout.

    PYTHONPATH and PYTEST_ADDOPTS are dropped and plugins are not auto-loaded, so the caller's
    environment cannot change which code is imported or how pytest runs (the plugins of a big
    environment also cost a second a run); no bytecode is written, so none can go stale.
    """
    drop = ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.Popen(
        cmd,
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
        text = out.decode("utf-8", "replace")
        return Verification(
            passed=False,
            exit_code=-9,
            summary=f"timed out after {timeout:g}s",
            output_tail=text[-_TAIL_CHARS:],
        )
    text = out.decode("utf-8", "replace")
    return Verification(
        passed=proc.returncode == 0,
        exit_code=proc.returncode,
        summary=_summary_line(text),
        output_tail=text[-_TAIL_CHARS:],
    )


def _summary_line(output: str) -> str:
    """pytest's closing line ("1 failed, 2 passed in 0.03s"), without -q-less '=' padding."""
    for line in reversed(output.splitlines()):
        if _SUMMARY.search(line):
            return line.strip().strip("=").strip()
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _is_test_file(rel: PurePosixPath) -> bool:
    """Whether a repo-relative path is part of the tests (as the agent knows them) or of pytest's
    configuration."""
    return rel.name in _PYTEST_CONFIG or is_test_file(rel.as_posix())


def _files(root: Path) -> set[PurePosixPath]:
    found: set[PurePosixPath] = set()
    for path in root.rglob("*"):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        if ".git" in rel.parts or "__pycache__" in rel.parts or ".pytest_cache" in rel.parts:
            continue
        if path.is_file() or path.is_symlink():
            found.add(rel)
    return found


def _restore_tests(original: Path, workspace: Path) -> None:
    """Make the workspace's tests exactly the original's: overwrite, recreate, remove extras."""
    for rel in _files(workspace) - _files(original):
        if _is_test_file(rel):
            (workspace / rel).unlink()
    for rel in _files(original):
        if not _is_test_file(rel):
            continue
        # A folder on the way that is now a file or a link (out of the workspace) goes first.
        for depth in range(1, len(rel.parts)):
            folder = workspace.joinpath(*rel.parts[:depth])
            if folder.is_symlink() or folder.is_file():
                folder.unlink()
        target = workspace / rel
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(original / rel, target)


def _copy(src: str | Path, dst: str | Path) -> str:
    shutil.copyfile(src, dst)
    return str(dst)
