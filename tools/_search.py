"""The line search behind the files server's `search`, and the worker process it runs in.

Python's `re` cannot be interrupted, and while it runs it holds the GIL: a pattern that
backtracks catastrophically (`(a+)+$` on a long line of `a`s) would stop the whole server,
the answers to every other call included. So a regular expression is matched in a worker
process (this file run as a script) that reports its progress as it goes; the server kills it
when it stops making progress (see `files.search`). A literal query is matched in process,
by the same code: `re.escape` of a literal matches in linear time.

Only the standard library: the worker starts with `python -I -S` in a few milliseconds.

The worker reads one JSON object from stdin: `pattern`, `files` (a list of [shown name, path]),
`max_matches`, `max_line_chars`; it writes one JSON array per line to stdout: ["match", text],
["progress", shown name, line number] (line "0" as a file starts), then ["done", stopped]
(stopped: the match limit was reached), or ["error", message].
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator

# How much of a file is sniffed for a NUL byte to call it binary (as `_common` does).
BINARY_SNIFF_BYTES = 8192
# A progress report after this many lines, so a long file is not mistaken for a stuck match.
PROGRESS_EVERY_LINES = 500


def file_text(path: str) -> str | None:
    """A file's text, undecodable bytes as U+FFFD; None for a binary or unreadable file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace")


def matching_lines(
    compiled: re.Pattern[str], files: list[tuple[str, str]], max_matches: int, max_line_chars: int
) -> Iterator[tuple[str, ...]]:
    """Events of a search: ("match", "name:line: text"), ("progress", name, line), and last
    ("done", "stopped" or "")."""
    found = 0
    for name, path in files:
        text = file_text(path)
        if text is None:
            continue
        yield ("progress", name, "0")
        for number, line in enumerate(text.split("\n"), start=1):
            if number % PROGRESS_EVERY_LINES == 0:
                yield ("progress", name, str(number))
            if compiled.search(line):
                if found == max_matches:
                    yield ("done", "stopped")
                    return
                line = line.rstrip("\r")
                if len(line) > max_line_chars:
                    line = line[:max_line_chars] + " ..."
                found += 1
                yield ("match", f"{name}:{number}: {line}")
    yield ("done", "")


def worker() -> None:
    """Run one search from stdin, reporting every event on its own flushed line."""
    request = json.load(sys.stdin)
    try:
        compiled = re.compile(request["pattern"])
    except re.error as exc:
        print(json.dumps(["error", f"invalid regular expression: {exc}"]), flush=True)
        return
    files = [(name, path) for name, path in request["files"]]
    for event in matching_lines(
        compiled, files, request["max_matches"], request["max_line_chars"]
    ):
        # ensure_ascii keeps undecodable names (lone surrogates) intact through the pipe.
        print(json.dumps(event), flush=True)


if __name__ == "__main__":
    worker()
