"""Where candidate changes are tried: a scratch copy of the repository, never the user's tree.

Each candidate is laid on the copy as the edit server would lay it on the real tree (through
MCP, so forgiving search/replace and atomic writes are the same code), checked for syntax and
tested there. Only the winner reaches the user's tree, as one patch that writes every file or
none (`land`). A run that finds no winner leaves the user's tree exactly as it was.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from pydantic import BaseModel
from turnout.agent.edits import Edit
from turnout.agent.host import McpHost, own_server
from turnout.agent.testrun import TestOutcome, parse_test_result
from turnout.runtimes.base import ToolHost
from turnout.tools._common import unified_diff

VARIANT_RUNNER = Path(__file__).resolve().parent.parent / "tools" / "variant_runner.py"

# Not copied: version control, caches, environments and turnout's own state. A test suite never
# needs them, and a virtualenv alone can be gigabytes.
SKIPPED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".turnout", ".venv", "venv", "env", "node_modules", "__pycache__",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox",
})


class Trial(BaseModel):
    """What became of one candidate on the scratch copy."""

    files: dict[str, str]  # every file the candidate changed, as it ended up
    edit_errors: list[str]  # edits that did not apply, in the edit server's words
    syntax_errors: list[str]
    tests: TestOutcome | None  # None when the candidate never got as far as the tests

    @property
    def passed(self) -> bool:
        return self.tests is not None and self.tests.passed and not self.syntax_errors

    @property
    def failures(self) -> int:
        """How far from passing: failing tests, or a large number when nothing could run."""
        if self.syntax_errors or self.tests is None:
            return 10_000
        return failure_count(self.tests)


def failure_count(tests: TestOutcome) -> int:
    if tests.passed:
        return 0
    counts = {word.rstrip("s"): int(n) for n, word in
              re.findall(r"(\d+) (failed|passed|errors?)", tests.summary)}
    if counts.get("error") and not counts.get("failed") and not counts.get("passed"):
        return 1_000  # nothing ran (the code does not import): as far from passing as can be
    failing = counts.get("failed", 0) + counts.get("error", 0)
    return failing if failing else 1_000


class Scratch:
    """A throwaway copy of `repo` with its own edit and tests servers rooted in it.

    Made on first use: a run that ends before its first candidate (the tests already pass)
    copies nothing and starts no server."""

    def __init__(self, repo: Path, test_command: str | None, errlog: TextIO | None = None) -> None:
        self.repo = repo
        self._test_command = test_command
        self._errlog = errlog
        self._tmp: Path | None = None
        self._mcp: McpHost | None = None
        self._wrappers: list[Callable[[ToolHost], ToolHost]] = []
        self._host: ToolHost | None = None
        self._base: dict[str, str | None] = {}  # each touched file as it was in the copy

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._mcp is not None:
                self._mcp.__exit__(kind, exc, tb)
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def root(self) -> Path:
        self._start()
        assert self._tmp is not None
        return self._tmp / self.repo.name

    @property
    def host(self) -> ToolHost:
        """The copy's servers, behind every wrapper given to `wrap`."""
        self._start()
        assert self._host is not None
        return self._host

    def wrap(self, wrapper: Callable[[ToolHost], ToolHost]) -> None:
        """Put a ToolHost wrapper (test protection, say) in front of the copy's servers."""
        self._wrappers.append(wrapper)

    def _start(self) -> None:
        if self._tmp is not None:
            return
        self._tmp = Path(tempfile.mkdtemp(prefix="turnout-scratch-"))
        root = self._tmp / self.repo.name
        shutil.copytree(self.repo, root, symlinks=True, ignore=_skip_dirs)
        tests_args = ["-m", "turnout.tools.tests", "--root", str(root)]
        if self._test_command:
            tests_args += ["--test-command", self._test_command]
        mcp = McpHost(
            [own_server("edit", ["-m", "turnout.tools.edit", "--root", str(root)], root),
             own_server("tests", tests_args, root)],
            errlog=self._errlog, roots=[root],
        )
        mcp.__enter__()
        self._mcp = mcp  # only once started: __exit__ closes what was opened
        host: ToolHost = mcp
        for wrapper in self._wrappers:
            host = wrapper(host)
        self._host = host

    def run_tests(self) -> TestOutcome:
        result = self.host.call_tool("run_tests", {})
        if result.is_error:
            return TestOutcome(exit_code=-1, summary="the test tool failed", output=result.content)
        return parse_test_result(result.content)

    def try_edits(self, base: dict[str, str], edits: list[Edit], extra: dict[str, str] | None = None) -> Trial:
        """Reset the copy, lay `base` (an earlier candidate's files) and then `edits` on it,
        and test the result. `extra` files (tests the run wrote) are laid first and are never
        part of the candidate's change."""
        self._lay(extra or {}, base)
        errors: list[str] = []
        for edit in edits:
            self._remember(edit.path)
            if edit.kind == "whole":
                result = self.host.call_tool("write_file", {"path": edit.path, "content": edit.content})
            else:
                result = self.host.call_tool(
                    "replace_in_file", {"path": edit.path, "old": edit.search, "new": edit.replace}
                )
            if result.is_error:
                errors.append(f"{edit.path}: {result.content}")
        files = {rel: text for rel, text in self.changed_files().items() if rel not in (extra or {})}
        syntax = [problem for rel, text in files.items() if (problem := syntax_error(rel, text))]
        if not files:
            return Trial(files={}, edit_errors=errors or ["the reply changed no file"],
                         syntax_errors=[], tests=None)
        tests = None if syntax else self.run_tests()
        return Trial(files=files, edit_errors=errors, syntax_errors=syntax, tests=tests)

    def run_with(self, extra: dict[str, str]) -> TestOutcome:
        """The tests on the copy as the repository is, with `extra` files laid on it."""
        self._lay(extra)
        return self.run_tests()

    def _lay(self, *layers: dict[str, str]) -> None:
        """Reset the copy, then write each layer's files over it, in order."""
        self.reset()
        for layer in layers:
            for rel, text in layer.items():
                self._write(rel, text)

    def screen(self, test: str, variants: list[tuple[str, str]], timeout_seconds: int = 10) -> list[int] | None:
        """The indexes of the `variants` (path, whole file text) under which the pytest test
        `test` passes, all tried in one call of the tests server (`tools/variant_runner.py`:
        a fork per variant, not a Python start); None when the screen itself could not run."""
        self.reset()
        spec = self.root.parent / "variants.json"  # beside the copy, never inside it
        spec.write_text(json.dumps({"test": test, "timeout_seconds": timeout_seconds,
                                    "variants": [{"path": p, "text": t} for p, t in variants]}),
                        encoding="utf-8")
        command = " ".join(shlex.quote(a) for a in (sys.executable, str(VARIANT_RUNNER), str(spec)))
        budget = min(3600, 30 + len(variants) * (timeout_seconds + 1))
        result = self.host.call_tool("run_tests", {"command": command, "timeout_seconds": budget})
        found = re.findall(r"(?m)^variants-passed: ?([\d,]*)\s*$", result.content)
        if result.is_error or not found:
            return None
        return [int(i) for i in found[-1].split(",") if i]

    def changed_files(self) -> dict[str, str]:
        changed: dict[str, str] = {}
        for rel, before in self._base.items():
            now = read_text_or_none(self.root / rel)
            if now is not None and now != before:
                changed[rel] = now
        return changed

    def reset(self) -> None:
        for rel, before in self._base.items():
            path = self.root / rel
            if before is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(before, encoding="utf-8")

    def _remember(self, rel: str) -> None:
        if rel not in self._base:
            self._base[rel] = read_text_or_none(self.root / rel)

    def _write(self, rel: str, text: str) -> None:
        self._remember(rel)
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def land(host: ToolHost, repo: Path, files: dict[str, str], originals: dict[str, str | None]) -> str:
    """Write the winning candidate into the user's tree as one all-or-nothing patch, through
    the user's own (approval-guarded) edit server. Files that already hold their new text are
    left alone, so landing twice (a run resumed after a crash mid-landing) changes nothing more.
    Returns "" on success, else why it did not land."""
    chunks = []
    for rel in sorted(files):
        now = read_text_or_none(repo / rel)
        if now == files[rel]:
            continue
        if now != originals.get(rel):
            return (
                f"{rel} changed in the working tree while the run was trying candidates; "
                "nothing was written. Run again on the current tree."
            )
        chunks.append(unified_diff(rel, now, files[rel]))
    if not chunks:
        return ""
    result = host.call_tool("apply_patch", {"patch": "".join(chunks)})
    return result.content if result.is_error else ""


def syntax_error(rel: str, text: str) -> str:
    """A Python file that does not parse, said as the interpreter would say it."""
    if not rel.endswith(".py"):
        return ""
    try:
        ast.parse(text, filename=rel)
    except SyntaxError as exc:
        return f"{rel}, line {exc.lineno}: SyntaxError: {exc.msg}"
    return ""


def _skip_dirs(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIPPED_DIRS or n.endswith(".egg-info")}


def read_text_or_none(path: Path) -> str | None:
    """A file's text, or None when it is missing, unreadable or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
