"""`turnout run` at a real terminal (a pseudo-terminal): a live status line and a coloured
diff; with --no-color, and into a pipe, plain lines only. The model is the product's
OpenAI-compatible fake on a loopback port, each reply held back 2 s so the status line shows."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from test_agent_loop import FIXED, calc_with, whole
from turnout.agent.cli.output import color_wanted
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    RecordedRequest,
    Scripted,
    openai_completion,
    openai_stream,
)

ESC = b"\x1b["


def run_at_a_terminal(repo: Path, *extra: str, environ: dict[str, str] | None = None) -> tuple[int, bytes]:
    """The console script with stdin, stdout and stderr on one pseudo-terminal; all it wrote."""
    fix = whole("calc.py", calc_with(repo, FIXED))

    def reply(request: RecordedRequest) -> Scripted:
        if isinstance(request.body, dict) and request.body.get("stream"):
            return Scripted.sse(openai_stream(fix), delay_s=2)
        return Scripted(body=openai_completion(fix), delay_s=2)

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color"} | (environ or {})
    with FakeUpstream(reply) as upstream:
        main_fd, terminal_fd = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "turnout.agent.cli", "run", "make the tests pass", "--repo", str(repo),
             "--model", f"{upstream.url}/v1#fake", "--samples", "0", *extra],
            stdin=terminal_fd, stdout=terminal_fd, stderr=terminal_fd, env=env, close_fds=True,
        )
        os.close(terminal_fd)
        written = b""
        while True:
            ready, _, _ = select.select([main_fd], [], [], 1)
            if ready:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # the terminal closed: the process is gone
                    break
                if not chunk:
                    break
                written += chunk
            elif process.poll() is not None:
                break
        os.close(main_fd)
        return process.wait(timeout=60), written


def test_at_a_terminal_a_status_line_runs_under_the_progress_and_the_diff_is_coloured(calc_repo: Path) -> None:
    code, written = run_at_a_terminal(calc_repo)

    assert code == 0, written[-2000:]
    assert b"\x1b[2K" in written  # the live line is redrawn in place
    assert "trying the change on a scratch copy · step 1 · 99 tokens".encode() in written
    assert b"tests before: 2 failed, 3 passed" in written  # a line a person reads, not key=value
    assert b"exit_code=" not in written
    assert b"\x1b[31m-    return total(values) / (len(values) - 1)" in written  # removed: red
    assert b"\x1b[32m+    return total(values) / len(values)" in written  # added: green


def test_no_color_prints_plain_lines_at_a_terminal(calc_repo: Path) -> None:
    code, written = run_at_a_terminal(calc_repo, "--no-color")
    assert code == 0, written[-2000:]
    assert ESC not in written
    assert b"turnout: tests before: 2 failed, 3 passed" in written
    assert b"+    return total(values) / len(values)" in written


def test_colour_is_for_a_terminal_only_and_yields_to_no_color_and_a_dumb_term(monkeypatch: pytest.MonkeyPatch) -> None:
    main_fd, terminal_fd = pty.openpty()
    read_end, write_end = os.pipe()
    with os.fdopen(terminal_fd, "w") as terminal, os.fdopen(write_end, "w") as pipe:
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("TERM", "xterm")
        assert color_wanted(terminal) and not color_wanted(pipe)
        assert not color_wanted(terminal, no_color=True)
        monkeypatch.setenv("TERM", "dumb")
        assert not color_wanted(terminal)
        monkeypatch.setenv("TERM", "xterm")
        monkeypatch.setenv("NO_COLOR", "1")
        assert not color_wanted(terminal)
    os.close(main_fd)
    os.close(read_end)
