"""Shared helpers for turnout's MCP servers: root confinement, atomic writes, diffs, CLI args.

Imports only the standard library and `mcp`, like the servers themselves.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, TextContent

# Directories that are never worth listing or searching: VCS data, environments, caches.
SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "__pycache__", ".turnout", "node_modules", ".pytest_cache"}
)

# How much of a file is sniffed for a NUL byte to call it binary (git uses the same idea).
BINARY_SNIFF_BYTES = 8192


# The longest path a tool takes: Linux's PATH_MAX; a longer one cannot name a file anyway.
MAX_PATH_CHARS = 4096
# One name in a path: NAME_MAX bytes on Linux and macOS.
MAX_NAME_BYTES = 255
# The most text any one argument may carry: a file the edit tools would still load.
MAX_ARGUMENT_CHARS = 8 * 2**20
# Tighter limits for arguments that name things rather than carry content.
ARGUMENT_LIMITS = {
    "path": MAX_PATH_CHARS,
    "pattern": MAX_PATH_CHARS,
    "test": MAX_PATH_CHARS,
    "query": 10_000,
    "command": 100_000,
}
# An error message is for a model to read: a runaway one is cut.
MAX_ERROR_CHARS = 4000

# A file name that is not UTF-8 arrives from os.listdir with each bad byte as a lone surrogate
# (U+DC80..U+DCFF, Python's surrogateescape), which no JSON reply can carry.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_OTHER_SURROGATE = re.compile("[\ud800-\udfff]")
_BYTE_ESCAPE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")

logger = logging.getLogger("turnout.tools")


def show_name(text: str) -> str:
    """`text` made safe to send: each byte of a name that was not UTF-8 is written `\\xNN`
    (so `caf\\xe9.py` names the Latin-1 file b"caf\\xe9.py"), any other lone surrogate
    `\\uXXXX`. Every tool accepts the `\\xNN` form back (see `confine`)."""
    text = _ESCAPED_BYTE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)
    return _OTHER_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def unescape_name(text: str) -> str:
    """The inverse of `show_name` for bytes: `\\xNN` (NN from 80 to ff) back to the byte."""
    return _BYTE_ESCAPE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text)


def argument_size(value: Any) -> int:
    """Roughly how many characters an argument holds, nested values included."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(str(key)) + argument_size(item) + 2 for key, item in value.items())
    if isinstance(value, list):
        return sum(argument_size(item) + 1 for item in value)
    return 8


def check_argument_sizes(tool: str, arguments: dict[str, Any]) -> None:
    """Refuse an oversize argument before any work: a clear message, not a slow failure."""
    for key, value in arguments.items():
        limit = ARGUMENT_LIMITS.get(key, MAX_ARGUMENT_CHARS)
        size = argument_size(value)
        if size > limit:
            raise ToolError(
                f"{tool}: the argument {show_name(key)[:100]!r} is {size:,} characters long; "
                f"the limit is {limit:,}. Give a shorter value (a path relative to the root, a "
                "narrower query, or the edit in smaller parts)"
            )


class ToolServer(MCPServer):
    """An MCPServer whose every reply can be sent: oversize arguments are refused up front,
    text is made JSON-safe (`show_name`), and a failure the tool did not foresee becomes an
    error result that names it, instead of a bare "Error executing tool" or a reply that
    cannot be serialised (which would kill the connection and leave the caller waiting)."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            check_argument_sizes(name, arguments)
            result = await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            cause = exc.__cause__ or exc
            logger.error("tool %r failed unexpectedly", name, exc_info=cause)
            detail = f"{type(cause).__name__}: {cause}"
            raise ToolError(
                _short(f"{exc}: internal error, {detail} (a bug in turnout's server: report it)")
            ) from None
        except ToolError as exc:
            raise ToolError(_short(str(exc))) from None
        if isinstance(result, CallToolResult):
            result = result.model_copy(
                update={
                    "content": [
                        block.model_copy(update={"text": show_name(block.text)})
                        if isinstance(block, TextContent) else block
                        for block in result.content
                    ]
                }
            )
        return result


def _short(message: str) -> str:
    message = show_name(message)
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + f" ... ({len(message) - MAX_ERROR_CHARS} more characters)"
    return message


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
    if len(path) > MAX_PATH_CHARS:
        raise ToolError(
            f"the path is {len(path):,} characters long; no file has a path over "
            f"{MAX_PATH_CHARS:,}: give a path relative to the root"
        )
    try:
        os.fsencode(path)
    except UnicodeEncodeError as exc:
        raise ToolError(
            f"path {show_name(path)!r} holds {show_name(exc.object[exc.start:exc.end])!r}, which no "
            "file name can: give the name as list_files shows it"
        ) from None
    candidate = root / path  # an absolute path stays as it is
    if "\\x" in path and not os.path.lexists(candidate):
        candidate = root / unescape_name(path)  # a name as show_name wrote it
    for part in candidate.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise ToolError(
                f"a name in the path is {len(os.fsencode(part)):,} bytes long; file systems "
                f"allow {MAX_NAME_BYTES}: give the path of an existing file"
            )
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        raise ToolError(f"path {path!r} cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(root):
        raise ToolError(
            f"path {path!r} is outside the repository root {root}; "
            "give a path relative to the root, or an absolute path inside it"
        )
    return resolved


def confine_writable(root: Path, path: str) -> Path:
    """`confine`, and refuse git's own files: any `.git` along the path (a repository's data,
    or a `.git` file, which redirects git to another repository) and whatever the root's
    `.git` link or `gitdir:` file leads to. Git's config names programs git runs, so a write
    there would turn the read-only git tools into a way to run code."""
    resolved = confine(root, path)
    parts = [*Path(path).parts, *resolved.relative_to(root).parts]
    inside_git = any(part.casefold() == ".git" for part in parts)
    inside_git = inside_git or any(resolved.is_relative_to(place) for place in git_places(root))
    if inside_git:
        raise ToolError(
            f"{path!r} is inside git's own data (.git), which the edit tools never write: its "
            "config and hooks name programs that git runs; edit files of the working tree only"
        )
    return resolved


def git_places(root: Path) -> list[Path]:
    """Where the root's `.git` leads when it is a link or a `gitdir:` file (else nothing)."""
    dot_git = root / ".git"
    if dot_git.is_symlink():
        return [dot_git.resolve()]
    if not dot_git.is_file():
        return []
    try:
        with dot_git.open("rb") as handle:
            first = handle.read(4096).decode("utf-8", errors="replace").split("\n", 1)[0]
    except OSError:
        return []
    if not first.startswith("gitdir:"):
        return []
    return [(root / first.removeprefix("gitdir:").strip()).resolve()]


def relative(root: Path, path: Path) -> str:
    """`path` relative to `root` in POSIX form, "." for the root itself, as tools show it
    (`show_name`: a name that is not UTF-8 has its bad bytes written `\\xNN`)."""
    rel = path.relative_to(root).as_posix()
    return show_name(rel) or "."


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
