"""MCP server "files": read files by line range, list files by glob, search text.

Run as `python -m turnout.tools.files --root PATH`; it speaks MCP over stdio. Every path is
confined to the root (see `_common.confine`); nothing here writes.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from turnout.tools._common import (
    BINARY_SNIFF_BYTES,
    SKIP_DIRS,
    ToolServer,
    confine,
    inside_root,
    is_binary,
    make_arg_parser,
    relative,
    resolve_root,
    split_lines,
)
from turnout.tools._search import matching_lines
from turnout.tools.globs import path_matcher

MAX_READ_CHARS = 200_000
# Files above this are streamed by line instead of loaded whole, and skipped by search.
MAX_WHOLE_READ_BYTES = 8 * 2**20
MAX_LARGE_LINE_BYTES = 2**20
MAX_LIST_ENTRIES = 1000
MAX_SEARCH_MATCHES = 200
# A matching line longer than this is cut: minified files would otherwise flood the context.
MAX_MATCH_LINE_CHARS = 400

# A regular expression runs in a worker process: killed when it reports no progress for this
# long (one stretch of a few hundred lines), or when the whole search runs this long.
REGEX_STALL_SECONDS = 1.0
REGEX_SEARCH_SECONDS = 30.0
SEARCH_WORKER = Path(__file__).with_name("_search.py")

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def walk_files(root: Path, base: Path) -> Iterator[Path]:
    """Files under `base`, skipping SKIP_DIRS and symlinks that lead outside the root."""
    if base.is_file():
        yield base
        return
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if path.is_symlink() and not inside_root(root, path):
                continue
            yield path


def read_text(path: Path) -> tuple[str, bool]:
    """The file's text and whether it was valid UTF-8; refuses binary files."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ToolError(f"cannot read the file: {exc.strerror or exc}") from None
    if is_binary(data):
        raise ToolError(f"binary file, not shown ({len(data)} bytes)")
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


def read_large(path: Path, rel: str, start_line: int, end_line: int | None, size: int) -> str:
    """Lines of a file too large to load whole, streamed: memory stays bounded by the reply.

    The total line count is not known without reading everything, so the header gives the
    size instead. A line longer than MAX_LARGE_LINE_BYTES counts as several.
    """
    size_text = f"{size / 2**20:.0f} MB"
    shown: list[str] = []
    chars = 0
    number = 0
    stopped = ""
    valid_utf8 = True
    try:
        with path.open("rb") as handle:
            if is_binary(handle.read(BINARY_SNIFF_BYTES)):
                raise ToolError(f"{rel}: binary file, not shown ({size} bytes)")
            handle.seek(0)
            while raw := handle.readline(MAX_LARGE_LINE_BYTES):
                number += 1
                if number < start_line:
                    continue
                if end_line is not None and number > end_line:
                    break
                if b"\0" in raw:
                    stopped = f" (binary content from line {number} on, not shown)"
                    break
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    line, valid_utf8 = raw.decode("utf-8", errors="replace"), False
                if shown and chars + len(line) > MAX_READ_CHARS:
                    stopped = (
                        f" (truncated at {MAX_READ_CHARS // 1000} KB; read the rest with "
                        f"start_line={number})"
                    )
                    break
                shown.append(line)
                chars += len(line)
    except OSError as exc:
        raise ToolError(f"{rel}: cannot read the file: {exc.strerror or exc}") from None
    if not shown and not stopped:
        raise ToolError(f"start_line {start_line} is past the end of {rel}, which has {number} lines")
    first = start_line if shown else 0
    last = start_line + len(shown) - 1 if shown else 0
    header = f"# {rel} lines {first}-{last} of a {size_text} file (too large to count its lines)"
    if not valid_utf8:
        header += " (not valid UTF-8: undecodable bytes shown as U+FFFD)"
    return header + stopped + "\n" + "".join(shown)


def search_in_worker(pattern: str, files: list[tuple[str, str]]) -> list[tuple[str, ...]]:
    """The events of a regular-expression search run in a worker process (`_search.py`),
    which is killed when it makes no progress for REGEX_STALL_SECONDS (a pattern that
    backtracks catastrophically) or runs past REGEX_SEARCH_SECONDS."""
    request = {
        "pattern": pattern,
        "files": files,
        "max_matches": MAX_SEARCH_MATCHES,
        "max_line_chars": MAX_MATCH_LINE_CHARS,
    }
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", str(SEARCH_WORKER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()

    def feed_and_read() -> None:
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(request).encode("ascii"))
            process.stdin.close()
        except OSError:
            pass  # the worker died; the read below sees its end
        for line in process.stdout:
            lines.put(line)
        lines.put(b"")

    feeder = threading.Thread(target=feed_and_read, daemon=True)
    feeder.start()
    events: list[tuple[str, ...]] = []
    deadline = time.monotonic() + REGEX_SEARCH_SECONDS
    where = "the first file"
    try:
        while True:
            wait = min(REGEX_STALL_SECONDS, deadline - time.monotonic())
            try:
                line = lines.get(timeout=max(wait, 0))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise ToolError(
                        f"the search ran past {REGEX_SEARCH_SECONDS:g}s and was stopped; narrow "
                        "the path or simplify the regular expression"
                    ) from None
                raise ToolError(
                    f"the regular expression {pattern[:200]!r} spent over "
                    f"{REGEX_STALL_SECONDS:g}s in {where} without finishing and was stopped: it "
                    "backtracks catastrophically (nested repeats such as (a+)+ do). Simplify it "
                    "(a+ instead of (a+)+), anchor it, or pass regex=false to search for "
                    "literal text"
                ) from None
            if not line:
                raise ToolError("the search worker ended without an answer; search again")
            event = tuple(json.loads(line))
            if event[0] == "error":
                raise ToolError(str(event[1]))
            if event[0] == "progress":
                where = event[1] if event[2] == "0" else f"{event[1]} after line {event[2]}"
                continue
            events.append(event)
            if event[0] == "done":
                return events
    finally:
        process.kill()
        process.wait()
        feeder.join(timeout=5)  # the killed worker's pipe ends, and with it the reading
        with suppress(OSError):  # a worker that died mid-request leaves a broken pipe
            process.stdin.close()
        process.stdout.close()


def create_server(root: Path) -> ToolServer:
    server = ToolServer(
        "files",
        instructions=f"Read, list and search files inside the repository root {root}.",
    )

    def existing(path: str) -> Path:
        resolved = confine(root, path)
        if not resolved.exists():
            raise ToolError(
                f"{path!r} does not exist under the repository root; "
                "use list_files to see which files there are"
            )
        return resolved

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def read_file(path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Read a text file, or lines start_line..end_line of it (1-based, inclusive).

        The first line of the result is a header such as `# calc.py lines 1-12 of 12`; the
        file's lines follow verbatim, without line numbers.
        """
        resolved = existing(path)
        if resolved.is_dir():
            raise ToolError(f"{path!r} is a directory; use list_files to see what is in it")
        rel = relative(root, resolved)
        if not resolved.is_file():
            # A FIFO or a device would block the read forever or never end.
            raise ToolError(f"{rel} is not a regular file (a pipe, socket or device); not read")
        if start_line < 1:
            raise ToolError(f"start_line must be 1 or more, got {start_line}")
        if end_line is not None and end_line < start_line:
            raise ToolError(f"end_line ({end_line}) is before start_line ({start_line})")
        size_bytes = resolved.stat().st_size
        if size_bytes > MAX_WHOLE_READ_BYTES:
            return read_large(resolved, rel, start_line, end_line, size_bytes)
        try:
            text, valid_utf8 = read_text(resolved)
        except ToolError as exc:
            raise ToolError(f"{rel}: {exc}") from None
        lines = split_lines(text)
        total = len(lines)
        if total and start_line > total:
            raise ToolError(
                f"start_line {start_line} is past the end of {rel}, which has {total} lines"
            )
        last = total if end_line is None else min(end_line, total)

        shown: list[str] = []
        size = 0
        for number in range(start_line, last + 1):
            line = lines[number - 1]
            if shown and size + len(line) > MAX_READ_CHARS:
                break
            shown.append(line)
            size += len(line)
        shown_last = start_line + len(shown) - 1 if shown else 0

        header = f"# {rel} lines {start_line if shown else 0}-{shown_last} of {total}"
        if not valid_utf8:
            header += " (not valid UTF-8: undecodable bytes shown as U+FFFD)"
        if shown_last < last:
            header += (
                f" (truncated at {MAX_READ_CHARS // 1000} KB; read the rest with "
                f"start_line={shown_last + 1})"
            )
        if total == 0:
            header += " (empty file)"
        return header + "\n" + "".join(shown)

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def list_files(path: str = ".", pattern: str = "**/*") -> str:
        """List files under a directory, one path relative to the repository root per line.

        `pattern` is a glob over paths relative to `path` (`**/` spans directories, e.g.
        `src/**/*.py`); a pattern without "/" matches file names at any depth, e.g. `*.py`.
        Skips .git, .venv, venv, __pycache__, .turnout, node_modules and .pytest_cache.
        """
        base = existing(path)
        try:
            matches = path_matcher(pattern)
        except re.error as exc:  # a set the glob cannot express, such as [z-a]
            raise ToolError(f"invalid glob pattern {pattern!r}: {exc}; fix the [...] set") from None
        found: list[str] = []
        for file in walk_files(root, base):
            if base.is_file() or matches(file.relative_to(base).as_posix()):
                found.append(relative(root, file))
        found.sort()
        if not found:
            return f"(no files match {pattern!r} under {relative(root, base)})"
        text = "\n".join(found[:MAX_LIST_ENTRIES])
        if len(found) > MAX_LIST_ENTRIES:
            text += (
                f"\n... {len(found) - MAX_LIST_ENTRIES} more files not shown; "
                "narrow the path or pattern"
            )
        return text

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def search(query: str, path: str = ".", regex: bool = False) -> str:
        """Search text files under `path` for `query` (a Python regular expression when
        regex is true); one `relpath:lineno: line` per match. Binary files are skipped.
        """
        if not query:
            raise ToolError("query is empty; give the text to search for")
        base = existing(path)
        try:
            compiled = re.compile(query if regex else re.escape(query))
        except re.error as exc:
            raise ToolError(
                f"invalid regular expression {query!r}: {exc}; fix it, or pass regex=false "
                "to search for the literal text"
            ) from None

        files: list[tuple[str, str]] = []
        too_large: list[str] = []
        for file in walk_files(root, base):
            try:
                # A FIFO would block the search forever; a huge file would fill memory.
                if not file.is_file():
                    continue
                if file.stat().st_size > MAX_WHOLE_READ_BYTES:
                    too_large.append(relative(root, file))
                    continue
            except OSError:
                continue
            files.append((relative(root, file), str(file)))
        if regex:
            events = search_in_worker(query, files)
        else:
            events = list(
                matching_lines(compiled, files, MAX_SEARCH_MATCHES, MAX_MATCH_LINE_CHARS)
            )
        matches = [event[1] for event in events if event[0] == "match"]
        stopped = ("done", "stopped") in events
        skipped = ""
        if too_large:
            listed = ", ".join(too_large[:5]) + (" ..." if len(too_large) > 5 else "")
            skipped = (
                f"\n(skipped {len(too_large)} files over {MAX_WHOLE_READ_BYTES // 2**20} MB: "
                f"{listed}; read_file reads them by line range)"
            )
        if not matches:
            return f"(no matches for {query!r} under {relative(root, base)}){skipped}"
        text = "\n".join(matches)
        if stopped:
            text += f"\n... stopped after {MAX_SEARCH_MATCHES} matches; narrow the query or path"
        return text + skipped

    return server


def main() -> None:
    parser = make_arg_parser("files", "MCP server: read, list and search files inside a root.")
    args = parser.parse_args()
    create_server(resolve_root(args.root)).run()


if __name__ == "__main__":
    main()
