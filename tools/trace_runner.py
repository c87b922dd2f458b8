"""Run one pytest test and write down what the code under test did: each call with its
arguments, each line it ran with the values that line assigned, each return value.

Run as a script by the tests server, with the project's own Python and pytest:

    python trace_runner.py OUT_FILE TEST_ID

A failing assertion says what came out; this says how it came out, which is what a reader (a
small model especially) needs to see to find the line that is wrong: `self._ttl = ttl_ms / 100`
followed by `-> self._ttl = 15.0` for ttl_ms=1500 names the bug better than `assert 'ada' ==
'expired'` does. Only files under the working directory that are not tests are traced, and only
while the test itself runs (not while modules are collected). The trace is capped: a loop shows
its first iterations, then how many events were left out.

This file runs inside the project's test process, not the tests server's: it imports pytest,
which the tool servers themselves never do.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any

MAX_EVENTS = 80
MAX_REPR = 80
MAX_CHARS = 3500
COMPREHENSIONS = {"<genexpr>", "<listcomp>", "<setcomp>", "<dictcomp>"}


def short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ in the code under test is no reason to stop
        return f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"
    if text.startswith("<") and " object at 0x" in text:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


TEST_FOLDERS = frozenset({"tests", "test", "testing"})


def is_test_file(rel: str) -> bool:
    """`turnout.agent.testrun.is_test_file`, copied: this script runs where turnout cannot be
    imported. tests/test_test_files.py checks that the two agree."""
    parts = rel.split("/")
    name = parts[-1]
    return (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            or any(part in TEST_FOLDERS for part in parts[:-1]))


def snapshot(frame: FrameType) -> dict[str, str]:
    """The frame's local names and, for a method, its instance's attributes, as reprs."""
    values = {name: short_repr(v) for name, v in frame.f_locals.items()
              if not name.startswith("__")}
    owner = frame.f_locals.get("self")
    attrs = getattr(owner, "__dict__", None)
    if isinstance(attrs, dict):
        for name, v in attrs.items():
            values[f"self.{name}"] = short_repr(v)
    return values


class Tracer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.lines: list[str] = []
        self.events = 0
        self.dropped = 0
        self.depth: dict[int, int] = {}  # frame id -> call depth among traced frames
        self.pending: dict[int, tuple[int, dict[str, str]]] = {}  # frame id -> (line, values before)
        self._files: dict[str, str | None] = {}
        self._source: dict[str, list[str]] = {}

    def relative(self, filename: str) -> str | None:
        if filename not in self._files:
            rel: str | None = None
            path = Path(filename)
            if path.is_absolute() and "site-packages" not in path.parts:
                try:
                    rel = path.resolve().relative_to(self.root).as_posix()
                except ValueError:
                    rel = None
            if rel is not None and (is_test_file(rel) or not rel.endswith(".py")):
                rel = None
            self._files[filename] = rel
        return self._files[filename]

    def source(self, filename: str, lineno: int) -> str:
        if filename not in self._source:
            try:
                self._source[filename] = Path(filename).read_text(encoding="utf-8").splitlines()
            except OSError:
                self._source[filename] = []
        lines = self._source[filename]
        return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""

    def write(self, depth: int, text: str) -> None:
        self.events += 1
        if self.events > MAX_EVENTS:
            self.dropped += 1
            return
        self.lines.append("  " * depth + text)

    def finish_line(self, frame: FrameType) -> None:
        """Write the line that just ran in `frame`, with the values it changed."""
        key = id(frame)
        if key not in self.pending:
            return
        lineno, before = self.pending.pop(key)
        after = snapshot(frame)
        changed = [f"{name} = {value}" for name, value in after.items() if before.get(name) != value]
        text = f"{lineno}: {self.source(frame.f_code.co_filename, lineno)}"
        if changed:
            text += "    -> " + ", ".join(changed)
        self.write(self.depth.get(key, 0) + 1, text)

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        rel = self.relative(frame.f_code.co_filename)
        if rel is None or frame.f_code.co_name in COMPREHENSIONS:
            # Not code under test (or a comprehension's own frame, which would repeat its
            # line once per item): neither it nor its lines are traced.
            return None
        key = id(frame)
        if event == "call":
            parent = frame.f_back
            self.depth[key] = self.depth.get(id(parent), -1) + 1 if parent is not None else 0
            args = ", ".join(f"{name}={value}" for name, value in snapshot(frame).items()
                             if name != "self" and not name.startswith("self."))
            self.write(self.depth[key], f"{rel}:{frame.f_lineno} {frame.f_code.co_qualname}({args})")
            self.pending.pop(key, None)
            return self
        self.finish_line(frame)
        if event == "line":
            self.pending[key] = (frame.f_lineno, snapshot(frame))
        elif event == "return":
            self.write(self.depth.get(key, 0) + 1, f"return {short_repr(arg)}")
            self.depth.pop(key, None)
        elif event == "exception":
            kind, value, _ = arg
            self.write(self.depth.get(key, 0) + 1, f"raised {kind.__name__}: {short_repr(str(value))}")
        return self

    def text(self) -> str:
        lines = list(self.lines)
        if self.dropped:
            lines.append(f"... {self.dropped} more events not shown")
        out = "\n".join(lines)
        return out if len(out) <= MAX_CHARS else out[:MAX_CHARS] + "\n... (trace cut)"


def main() -> int:
    out_file, test_id = sys.argv[1], sys.argv[2]
    # Run as a script, this folder would come first on sys.path and shadow the project's own
    # modules (tests.py, git.py...): put the project's root there instead, as `python -m pytest`.
    sys.path[0] = os.getcwd()
    import pytest

    tracer = Tracer(Path.cwd().resolve())

    class TracePlugin:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_call(self, item: Any) -> Any:
            sys.settrace(tracer)
            try:
                yield
            finally:
                sys.settrace(None)

    code = pytest.main(["-q", "-x", "-p", "no:cacheprovider", test_id], plugins=[TracePlugin()])
    Path(out_file).write_text(tracer.text(), encoding="utf-8")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
