"""Turnout's state at rest: `.turnout/` in a repository holds requests and replies (the run's
checkpoints), logs and the audit trail, so it is private to the user and never committed.

- `state_dir(repo)` makes `REPO/.turnout` with mode 0700 (an existing one is narrowed to it)
  and puts a `.gitignore` holding `*` inside, so `git add -A` leaves it out;
- `private_dir`, `open_private` and `write_private` make folders 0700 and files 0600 whatever
  the umask: the process umask is left alone, since the tool servers this process starts
  inherit it and write the user's own files with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

STATE_DIR = ".turnout"


def state_dir(repo: Path) -> Path:
    """`REPO/.turnout`, private and git-ignored, created if needed."""
    path = private_dir(repo / STATE_DIR)
    ignore = path / ".gitignore"
    if not ignore.exists():
        write_private(ignore, "# turnout's run state: requests, replies, logs. Never commit it.\n*\n")
    return path


def private_dir(path: Path) -> Path:
    """`path` and any missing parents inside a `.turnout` folder, each 0700."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask
    if path.name == STATE_DIR or any(p.name == STATE_DIR for p in path.parents):
        for folder in [path, *path.parents]:
            if folder.stat().st_mode & 0o077:
                os.chmod(folder, 0o700)
            if folder.name == STATE_DIR:
                break
    return path


def open_private(path: Path, mode: str = "a") -> TextIO:
    """A text file opened for appending (`a`) or writing (`w`), created 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # a file made before this rule keeps its old mode otherwise
    return os.fdopen(fd, mode, encoding="utf-8")


def touch_private(path: Path) -> Path:
    """`path` created empty at 0600 if missing (a database file, before its library opens it:
    SQLite gives its journal and WAL files the database file's mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (a temporary file, then a rename), at 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open_private(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
