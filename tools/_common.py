"""Shared helpers for turnout's MCP servers: root confinement, atomic writes, diffs, CLI args.

Imports only the standard library and `mcp`, like the servers themselves.
"""

from __future__ import annotations

import argparse
import difflib
import os
import tempfile
from pathlib import Path

from mcp.server.mcpserver.exceptions import ToolError

# Directories that are never worth listing or searching: VCS data, environments, caches.
SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "__pycache__", ".turnout", "node_modules", ".pytest_cache"}
)

# How much of a file is sniffed for a NUL byte to call it binary (git uses the same idea).
BINARY_SNIFF_BYTES = 8192


def _read_umask() -> int:
    # Reading the umask means setting it; do it once at import, before any worker thread runs.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def make_arg_parser(server: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the `--root` option every server takes."""
    parser = argparse.ArgumentParser(
        prog=f"python -m turnout.tools.{server}", description=description
    )
    parser.add_argument(
        "--root",
        default=os.getcwd(),
        help="repository root; every path is confined to it (default: the current directory)",
    )
    return parser


def resolve_root(root: str) -> Path:
    """The root as an absolute path with symlinks resolved; exits if it is not a directory."""
    resolved = Path(root).resolve()
    if not resolved.is_dir():
        raise SystemExit(f"--root {root!r} is not a directory")
    return resolved


def confine(root: Path, path: str) -> Path:
    """Resolve `path` (relative to `root`, or absolute inside it) and refuse anything outside.

    Symlinks are resolved before the check, and the check compares path components, so a root
    of /repo does not admit /repo_evil. A path that does not exist yet resolves through its
    nearest existing parent (`Path.resolve` is non-strict), which is where a new file would go.
    """
    if "\0" in path:
        raise ToolError(f"path {path!r} contains a NUL byte; give a plain relative path")
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise ToolError(
            f"path {path!r} is outside the repository root {root}; "
            "give a path relative to the root, or an absolute path inside it"
        )
    return resolved


def relative(root: Path, path: Path) -> str:
    """`path` relative to `root` in POSIX form, "." for the root itself."""
    rel = path.relative_to(root).as_posix()
    return rel or "."


def inside_root(root: Path, path: Path) -> bool:
    """True when `path`, with symlinks resolved, is the root or inside it."""
    return path.resolve().is_relative_to(root)


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_SNIFF_BYTES]


def split_lines(text: str) -> list[str]:
    """Lines with their endings kept, split on "\\n" only.

    `str.splitlines` also splits on form feeds and Unicode separators, which would put our line
    numbers out of step with editors, grep and pytest tracebacks.
    """
    lines = text.split("\n")
    result = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        result.append(lines[-1])
    return result


def unified_diff(rel: str, old: str | None, new: str | None) -> str:
    """A unified diff from `old` to `new` with a/ b/ headers; None stands for no file."""
    fromfile = "/dev/null" if old is None else f"a/{rel}"
    tofile = "/dev/null" if new is None else f"b/{rel}"
    out: list[str] = []
    for line in difflib.unified_diff(
        split_lines(old or ""), split_lines(new or ""), fromfile=fromfile, tofile=tofile
    ):
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _new_file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def stage_write(path: Path, data: bytes) -> Path:
    """Write `data` to a synced temp file beside `path`, with `path`'s mode; return the temp.

    The caller moves it into place with `os.replace` (atomic on POSIX within one directory) or
    removes it; nothing is left behind if staging itself fails.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _new_file_mode(path))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def sync_dir(directory: Path) -> None:
    """fsync a directory so a rename in it survives a crash; best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a reader sees the old file or the new one, never half."""
    tmp = stage_write(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_dir(path.parent)
