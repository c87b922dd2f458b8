"""One in-process model call at a time on this machine, across turnout processes.

llama.cpp's CPU threads wait for each other by spinning (OpenMP). Two processes decoding at
once on the same cores do not share them: each spins while the other holds the core it waits
for, and both slow down far more than twice (measured on 2 cores: 64 tokens of the 135M model
took 10-32 s beside a 1.5B run, 1.4 s alone). `OMP_WAIT_POLICY=PASSIVE` ends the spinning but
costs every call alone (0.58x decode speed measured here). So the calls take turns instead: a
model call holds an exclusive lock on one file for its duration, and a second process's call
waits for it and then runs at full speed. Two runs at once then take about as long as the two
one after the other, each within about twice its time alone, and nothing spins.

The lock is `flock(2)` on `~/.cache/turnout/cpu.lock` (the models' cache folder's parent): it
goes with the process, so a killed process never leaves it held. Calls nest within a process
(a call check inside a reply), so the lock is counted per process, not taken twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from turnout.runtimes.local import models

_lock = threading.RLock()
_depth = 0
_handle: int | None = None


def lock_path() -> Path:
    return models.models_dir().parent / "cpu.lock"


@contextlib.contextmanager
def cpu_turn(waiting: Callable[[str], None] | None = None) -> Iterator[float]:
    """Hold this machine's model lock for the block; yields the seconds spent waiting for it.
    `waiting` hears one line when another process holds it. Where the lock file cannot be made
    (a read-only cache), the block runs without it."""
    global _depth, _handle
    with _lock:
        waited = 0.0
        if _depth == 0:
            _handle = _open()
            if _handle is not None:
                try:
                    fcntl.flock(_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if waiting is not None:
                        waiting("waiting for another turnout process's model call to finish "
                                "(one at a time on this machine: llama.cpp threads side by side "
                                "stall each other)")
                    started = time.perf_counter()
                    fcntl.flock(_handle, fcntl.LOCK_EX)
                    waited = time.perf_counter() - started
        _depth += 1
        try:
            yield waited
        finally:
            _depth -= 1
            if _depth == 0 and _handle is not None:
                fcntl.flock(_handle, fcntl.LOCK_UN)
                os.close(_handle)
                _handle = None


def _open() -> int | None:
    path = lock_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
