"""`turnout chat` at a real terminal, driven as a person would through tmux (send-keys,
paste-buffer, capture-pane), on the 135M model in process: the answer shows while it is being
written, a pasted block of three lines is one message, `/model` with a missing file leaves the
session running, and `/undo` puts back what `/run` changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from turnout.runtimes.local import models

pytestmark = pytest.mark.model
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Tmux:
    """One tmux server of the test's own (its own socket), one window running the command."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, timeout=30, check=True)
        return done.stdout

    def screen(self) -> str:
        # -J joins wrapped lines, -S - takes the scrollback too.
        return self("capture-pane", "-p", "-J", "-S", "-", "-t", "chat")

    def wait_for(self, seen: Callable[[str], bool], timeout_s: float, what: str) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.screen()
            if seen(text):
                return text
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout_s} s; the screen:\n{self.screen()}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: `make test` installs it (apt-get install tmux)")
    terminal = Tmux(tmp_path / "tmux.sock")
    yield terminal
    subprocess.run(["tmux", "-S", str(terminal.socket), "kill-server"], capture_output=True, check=False)


def prompts(screen: str) -> int:
    return sum(1 for line in screen.splitlines() if line.startswith("you>"))


def test_chat_at_a_terminal_streams_takes_a_paste_as_one_message_survives_a_bad_model_and_undoes(
    tmux: Tmux, tmp_path: Path
) -> None:
    repo = tmp_path / "calc"
    shutil.copytree(EXAMPLES / "calc", repo)
    original = (repo / "calc.py").read_bytes()
    cache = tmp_path / "cache"
    env = {"TURNOUT_CACHE_DIR": str(cache), "TERM": "xterm-256color", "PYTHONUNBUFFERED": "1"}
    command = (f"{sys.executable} -m turnout.agent.cli chat --model {models.TEST_MODEL} "
               "--no-builtin-tools --approval-mode full-auto; sleep 600")
    tmux("new-session", "-d", "-s", "chat", "-x", "160", "-y", "50", "-c", str(repo),
         *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")], command)
    tmux.wait_for(lambda s: prompts(s) == 1, 60, "first prompt")

    # The answer appears while it is written: a screen with words after the model's prefix
    # and no new prompt yet, then the finished answer, longer, under a new prompt.
    tmux("send-keys", "-t", "chat", "Tell me a long story about a lighthouse keeper.", "Enter")
    prefix = f"{models.TEST_MODEL}> "
    answer = lambda s: s[s.index(prefix) + len(prefix):].split("\nyou>")[0].strip() if prefix in s else ""
    partial = tmux.wait_for(lambda s: len(answer(s)) > 5 and prompts(s) == 1,
                            120, "streamed words before the answer ended")
    finished = tmux.wait_for(lambda s: prompts(s) == 2, 300, "end of the answer")
    assert len(answer(finished)) > len(answer(partial)), (answer(partial), answer(finished))
    assert answer(finished).startswith(answer(partial)[:20])

    # A bracketed paste of three lines, then Enter: one message, one request.
    tmux("set-buffer", "-b", "pasted", "Traceback (most recent call last):\n  File \"calc.py\"\nValueError: boom")
    tmux("paste-buffer", "-p", "-b", "pasted", "-t", "chat")
    tmux("send-keys", "-t", "chat", "Enter")
    tmux.wait_for(lambda s: prompts(s) == 3, 300, "the answer to the pasted block")
    [history_file] = (cache / "chat" / "history").glob("*.json")
    users = [m["content"] for m in json.loads(history_file.read_text())["messages"] if m["role"] == "user"]
    assert users[-1] == "Traceback (most recent call last):\n  File \"calc.py\"\nValueError: boom"
    assert len(users) == 2

    # A model file that does not exist: told so, still on the old model, the session goes on.
    tmux("send-keys", "-t", "chat", "/model missing.gguf", "Enter")
    after_bad_model = tmux.wait_for(lambda s: prompts(s) == 4, 60, "the prompt after /model")
    assert "missing.gguf" in after_bad_model and f"still on {models.TEST_MODEL}" in after_bad_model

    # /run lands a verified fix (the variations find it whatever the small model writes);
    # /undo puts calc.py back byte for byte.
    tmux("send-keys", "-t", "chat", "/run make the failing tests pass", "Enter")
    tmux.wait_for(lambda s: prompts(s) == 5, 420, "the end of /run")
    assert (repo / "calc.py").read_bytes() != original, tmux.screen()[-3000:]
    tmux("send-keys", "-t", "chat", "/undo", "Enter")
    tmux.wait_for(lambda s: prompts(s) == 6, 60, "the prompt after /undo")
    assert (repo / "calc.py").read_bytes() == original
    assert os.stat(cache / "chat" / "prompt_history").st_mode & 0o077 == 0
