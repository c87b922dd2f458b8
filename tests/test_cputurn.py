"""Model calls take turns across processes (runtimes/local/cputurn.py), and nest within one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from turnout.runtimes.local import cputurn

HOLD = """
import sys, time
from turnout.runtimes.local.cputurn import cpu_turn
with cpu_turn():
    print("holding", flush=True)
    time.sleep(float(sys.argv[1]))
"""


def test_a_call_waits_while_another_process_holds_the_turn_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TURNOUT_MODELS_DIR", str(tmp_path / "models"))
    other = subprocess.Popen([sys.executable, "-c", HOLD, "1.5"], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ))
    heard: list[str] = []
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "holding"
        started = time.perf_counter()
        with cputurn.cpu_turn(heard.append) as waited:
            ran_at = time.perf_counter() - started
            # A call check inside a reply takes the turn its reply holds: no wait, no deadlock.
            with cputurn.cpu_turn(heard.append) as inner:
                assert inner == 0.0
        assert other.wait(timeout=10) == 0
    finally:
        other.kill()
    assert waited > 0.5 and ran_at > 0.5  # it ran only once the other let go
    assert len(heard) == 1 and "another turnout process" in heard[0]
    assert cputurn.lock_path() == tmp_path / "cpu.lock"


def test_the_turn_is_free_again_once_a_call_is_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_MODELS_DIR", str(tmp_path / "models"))
    with cputurn.cpu_turn():
        pass
    done = subprocess.run([sys.executable, "-c", HOLD, "0"], capture_output=True, text=True, timeout=20, check=False,
                          env=dict(os.environ))
    assert done.returncode == 0 and done.stdout.strip() == "holding"
    with cputurn.cpu_turn() as waited:
        assert waited == 0.0
