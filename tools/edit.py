"""MCP server "edit": change files by search/replace, whole-file write, or unified diff.

Run as `python -m turnout.tools.edit --root PATH`; it speaks MCP over stdio. Every path is
confined to the root (see `_common.confine`). Writes are atomic (temp file, fsync,
`os.replace`) and keep the file's mode; `apply_patch` writes all files or none. Every tool
returns the unified diff of what it changed.
"""

from __future__ import annotations

import difflib
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from turnout.tools._common import (
    atomic_write,
    confine,
    is_binary,
    make_arg_parser,
    relative,
    resolve_root,
    split_lines,
    stage_write,
    sync_dir,
    unified_diff,
)

DRY_RUN_NOTE = "(dry run, nothing written)"
# Source files are small; a file this big is data, and loading it whole would fill memory.
MAX_EDIT_BYTES = 8 * 2**20

EDITS = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


# ----- text helpers -------------------------------------------------------------------------


def decode(data: bytes) -> str:
    # surrogateescape round-trips bytes that are not UTF-8, so an edit never corrupts them.
    return data.decode("utf-8", errors="surrogateescape")


def encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError as exc:
        raise ToolError(f"the text cannot be written as UTF-8: {exc.reason}") from None


def printable(text: str) -> str:
    """`text` with escaped non-UTF-8 bytes shown as U+FFFD, safe to send as JSON."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def to_crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def line_number(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def closest_positions(lines: list[str], target: str, limit: int = 3) -> list[int]:
    """Indexes of the lines most like `target`, ignoring surrounding whitespace."""
    stripped = [line.strip() for line in lines]
    best = difflib.get_close_matches(target.strip(), stripped, n=limit, cutoff=0.6)
    positions: list[int] = []
    for match in best:
        for index, line in enumerate(stripped):
            if line == match and index not in positions:
                positions.append(index)
                break
    return positions


def not_found_hint(text: str, old: str, rel: str) -> str:
    """Explain a failed search so a small model can retry with text that is really there."""
    message = f"old text was not found in {rel}."
    if " ".join(old.split()) in " ".join(text.split()):
        message += " It differs from the file only in whitespace or indentation."
    file_lines = [line.rstrip("\r") for line in text.split("\n")]
    old_lines = old.strip("\n").split("\n")
    first = next((line for line in old_lines if line.strip()), "")
    positions = closest_positions(file_lines, first) if first else []
    if positions:
        for position in positions:
            block = file_lines[position : position + len(old_lines)]
            message += f"\nClosest text in the file, from line {position + 1}:\n"
            message += "\n".join(block)
    else:
        message += "\nNo similar line was found."
    message += (
        "\nCopy old exactly from the file (whitespace and indentation included) and try "
        "again; read_file shows the current text."
    )
    return printable(message)


# ----- file helpers -------------------------------------------------------------------------


def read_existing_text(path: Path, rel: str) -> str:
    if path.is_dir():
        raise ToolError(f"{rel!r} is a directory, not a file")
    if path.exists() and not path.is_file():
        # Reading a FIFO or a device would block forever or never end.
        raise ToolError(f"{rel!r} is not a regular file (a pipe, socket or device)")
    try:
        if path.stat().st_size > MAX_EDIT_BYTES:
            raise ToolError(
                f"{rel!r} is larger than {MAX_EDIT_BYTES // 2**20} MB; these tools edit source "
                "files, not data files"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise ToolError(f"{rel!r} does not exist; use write_file to create a new file") from None
    except OSError as exc:
        raise ToolError(f"cannot read {rel!r}: {exc.strerror}") from None
    if is_binary(data):
        raise ToolError(f"{rel!r} is a binary file; these tools edit text files only")
    return decode(data)


def make_parents(path: Path) -> list[Path]:
    """Create the missing parent directories of `path`; return them, deepest first."""
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir()
    return missing


def remove_dirs(directories: list[Path]) -> None:
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            pass


def write_text(path: Path, rel: str, text: str) -> None:
    data = encode(text)
    created: list[Path] = []
    try:
        created = make_parents(path)
        atomic_write(path, data)
    except OSError as exc:
        remove_dirs(created)
        raise ToolError(f"could not write {rel!r}: {exc.strerror or exc}") from None


def with_note(diff: str, dry_run: bool) -> str:
    diff = printable(diff)
    return f"{diff}{DRY_RUN_NOTE}" if dry_run else diff


# ----- unified diff parsing and application -------------------------------------------------


@dataclass
class Hunk:
    header: str
    old_start: int
    # (tag, text): tag is " " for context, "-" for removed, "+" for added; text has no ending.
    lines: list[tuple[str, str]] = field(default_factory=list)
    old_no_eol: bool = False
    new_no_eol: bool = False

    def old_side(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "+"]


@dataclass
class FilePatch:
    old_path: str | None  # None for /dev/null: the file is created
    new_path: str | None  # None for /dev/null: the file is deleted
    hunks: list[Hunk] = field(default_factory=list)


def header_path(raw: str, prefix: str) -> str | None:
    path = raw.split("\t")[0].strip()
    if path == "/dev/null":
        return None
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = path[1:-1]
    return path.removeprefix(prefix)


def finish_hunk(hunk: Hunk | None) -> None:
    # An empty line ending a hunk is usually the patch's trailing newline, not context;
    # dropping trailing context never changes the result, it only anchors less.
    if hunk is None:
        return
    while hunk.lines and hunk.lines[-1] == ("=", ""):
        hunk.lines.pop()
    hunk.lines = [(" " if tag == "=" else tag, text) for tag, text in hunk.lines]


def parse_patch(patch: str) -> list[FilePatch]:
    lines = [line.removesuffix("\r") for line in patch.split("\n")]
    # Models often wrap a patch in a markdown fence.
    lines = [line for line in lines if not line.startswith("```")]
    files: list[FilePatch] = []
    current: FilePatch | None = None
    hunk: Hunk | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if line.startswith("--- ") and next_line.startswith("+++ "):
            finish_hunk(hunk)
            hunk = None
            current = FilePatch(header_path(line[4:], "a/"), header_path(next_line[4:], "b/"))
            files.append(current)
            index += 2
            continue
        header = _HUNK_HEADER.match(line)
        if header:
            if current is None:
                raise ToolError(
                    "the patch has a @@ hunk before any file header; put '--- a/PATH' and "
                    "'+++ b/PATH' lines before the hunks of each file"
                )
            finish_hunk(hunk)
            hunk = Hunk(header=line, old_start=int(header[1]))
            current.hunks.append(hunk)
        elif hunk is not None:
            if line == "":
                hunk.lines.append(("=", ""))
            elif line[0] in " -+":
                hunk.lines.append((line[0], line[1:]))
            elif line.startswith("\\"):
                # "\ No newline at end of file" applies to the line just above it.
                if hunk.lines and hunk.lines[-1][0] == "-":
                    hunk.old_no_eol = True
                elif hunk.lines and hunk.lines[-1][0] == "+":
                    hunk.new_no_eol = True
                elif hunk.lines:
                    hunk.old_no_eol = hunk.new_no_eol = True
            else:
                # git metadata ("diff --git", "index ...") or prose ends the hunk.
                finish_hunk(hunk)
                hunk = None
        index += 1
    finish_hunk(hunk)
    if not files:
        raise ToolError(
            "no file headers found; a unified diff needs '--- a/PATH' and '+++ b/PATH' lines "
            "followed by @@ hunks (use '--- /dev/null' for a new file)"
        )
    for file_patch in files:
        name = file_patch.new_path or file_patch.old_path
        if file_patch.old_path is None and file_patch.new_path is None:
            raise ToolError("a file patch goes from /dev/null to /dev/null; name a file")
        if not file_patch.hunks:
            raise ToolError(f"the patch for {name} has no @@ hunks")
        if (
            file_patch.old_path is not None
            and file_patch.new_path is not None
            and file_patch.old_path != file_patch.new_path
        ):
            raise ToolError(
                f"the patch renames {file_patch.old_path} to {file_patch.new_path}; renames are "
                "not supported: patch the file in place, then write_file the new one"
            )
    return files


def dominant_eol(lines: list[str]) -> str:
    crlf = sum(1 for line in lines if line.endswith("\r\n"))
    return "\r\n" if crlf * 2 > len(lines) else "\n"


def find_block(lines: list[str], block: list[str], expected: int, start: int) -> int | None:
    """Where `block` occurs in `lines` at or after `start`, nearest to `expected`.

    Exact text first (line endings aside), then ignoring trailing whitespace.
    """
    last = len(lines) - len(block)
    for normalize in (lambda s: s.rstrip("\r\n"), lambda s: s.rstrip()):
        wanted = [normalize(text) for text in block]
        found = [
            position
            for position in range(start, last + 1)
            if all(normalize(lines[position + j]) == wanted[j] for j in range(len(block)))
        ]
        if found:
            return min(found, key=lambda position: (abs(position - expected), position))
    return None


def hunk_failure(rel: str, number: int, hunk: Hunk, lines: list[str], expected: int) -> str:
    block = hunk.old_side()
    message = (
        f"hunk {number} of {rel} ({hunk.header}) does not apply: its context and '-' lines "
        f"were not found in the file. Expected these lines near line {hunk.old_start}:\n"
    )
    message += "\n".join(block)
    plain = [line.rstrip("\r\n") for line in lines]
    first = next((text for text in block if text.strip()), "")
    positions = closest_positions(plain, first, limit=1) if first else []
    if positions:
        at = positions[0]
        message += f"\nThe closest text in the file, from line {at + 1}:\n"
        message += "\n".join(plain[at : at + len(block)])
    elif plain:
        at = min(max(expected, 0), len(plain) - 1)
        message += f"\nThe file has, from line {at + 1}:\n"
        message += "\n".join(plain[at : at + len(block)])
    message += (
        "\nNothing was written for any file. Re-read the file with read_file and make the "
        "context lines match it exactly, or use replace_in_file."
    )
    return printable(message)


def apply_hunks(text: str, hunks: list[Hunk], rel: str) -> str:
    lines = split_lines(text)
    eol = dominant_eol(lines)
    final_eol = not lines or lines[-1].endswith("\n")
    if not final_eol:
        # Give the last line an ending while editing so lines added after it stay separate.
        lines[-1] += eol
    shift = 0
    start = 0
    for number, hunk in enumerate(hunks, start=1):
        block = hunk.old_side()
        # A hunk that removes nothing and has no context inserts after line old_start.
        base = hunk.old_start if not block else max(hunk.old_start - 1, 0)
        expected = base + shift
        if block:
            position = find_block(lines, block, expected, start)
            if position is None:
                raise ToolError(hunk_failure(rel, number, hunk, lines, expected))
        else:
            position = min(max(expected, start), len(lines))
        replacement: list[str] = []
        cursor = position
        for tag, line_text in hunk.lines:
            if tag == " ":
                replacement.append(lines[cursor])  # the file's own bytes, not the patch's
                cursor += 1
            elif tag == "-":
                cursor += 1
            else:
                replacement.append(line_text + eol)
        lines[position:cursor] = replacement
        shift = position - base + len(replacement) - len(block)
        start = position + len(replacement)
        if start == len(lines):
            if hunk.new_no_eol:
                final_eol = False
            elif hunk.old_no_eol:
                final_eol = True
    if not final_eol and lines:
        lines[-1] = lines[-1].rstrip("\r\n")
    return "".join(lines)


@dataclass
class PlannedFile:
    path: Path
    rel: str
    old: str | None  # None: the file does not exist yet
    new: str | None  # None: the file is deleted


def plan_patch(root: Path, files: list[FilePatch]) -> list[PlannedFile]:
    """Apply every hunk in memory; raise before anything is written if one fails."""
    planned: dict[Path, PlannedFile] = {}
    for file_patch in files:
        name = file_patch.new_path or file_patch.old_path
        assert name is not None
        path = confine(root, name)
        rel = relative(root, path)
        plan = planned.get(path)
        if plan is None:
            old = read_existing_text(path, rel) if path.exists() else None
            plan = planned[path] = PlannedFile(path, rel, old, old)
        if file_patch.old_path is None:
            if plan.new is not None:
                raise ToolError(
                    f"the patch creates {rel}, but it already exists; patch it against its "
                    "current text (read_file shows it) or use write_file"
                )
            current = ""
        else:
            if plan.new is None:
                raise ToolError(
                    f"the patch changes {rel}, which does not exist; use '--- /dev/null' to "
                    "create it, or list_files to find the right path"
                )
            current = plan.new
        result = apply_hunks(current, file_patch.hunks, rel)
        if file_patch.new_path is None:
            if result:
                raise ToolError(
                    f"the patch deletes {rel}, but its hunks leave {len(split_lines(result))} "
                    "lines; a deletion must remove every line"
                )
            plan.new = None
        else:
            plan.new = result
    return list(planned.values())


def commit(plans: list[PlannedFile]) -> None:
    """Stage every write first, then rename them all into place; on failure stage nothing."""
    staged: list[tuple[Path, Path]] = []
    created: list[Path] = []
    try:
        for plan in plans:
            if plan.new is not None and plan.new != plan.old:
                created.extend(make_parents(plan.path))
                staged.append((stage_write(plan.path, encode(plan.new)), plan.path))
    except OSError as exc:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        remove_dirs(created)
        raise ToolError(f"could not write the patched files: {exc.strerror or exc}") from None
    try:
        for temp, path in staged:
            os.replace(temp, path)
            sync_dir(path.parent)
    except OSError as exc:
        # Only a rename failed here; drop the temps that were not moved into place.
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise ToolError(f"could not write the patched files: {exc.strerror or exc}") from None
    for plan in plans:
        if plan.new is None and plan.old is not None:
            plan.path.unlink()
            sync_dir(plan.path.parent)


# ----- the three edits ----------------------------------------------------------------------


def replace_once(root: Path, path: str, old: str, new: str, dry_run: bool) -> str:
    resolved = confine(root, path)
    rel = relative(root, resolved)
    text = read_existing_text(resolved, rel)
    if not old:
        raise ToolError(
            "old is empty; give the exact text to replace (use write_file to write a whole file)"
        )
    count = text.count(old)
    # The file has Windows line endings; the model almost always sends "\n".
    if count == 0 and "\r\n" in text and "\n" in old and text.count(to_crlf(old)):
        old, new = to_crlf(old), to_crlf(new)
        count = text.count(old)
    if count == 0:
        raise ToolError(not_found_hint(text, old, rel))
    if count > 1:
        starts: list[int] = []
        index = text.find(old)
        while index != -1:
            starts.append(line_number(text, index))
            index = text.find(old, index + 1)
        shown = ", ".join(str(n) for n in starts[:10])
        raise ToolError(
            f"old occurs {count} times in {rel} (starting at lines {shown}); include more "
            "surrounding lines in old so that it matches exactly once"
        )
    updated = text.replace(old, new, 1)
    if updated == text:
        return f"no change: old and new are the same, {rel} is unchanged"
    if not dry_run:
        write_text(resolved, rel, updated)
    return with_note(unified_diff(rel, text, updated), dry_run)


def write_whole(root: Path, path: str, content: str, dry_run: bool) -> str:
    resolved = confine(root, path)
    rel = relative(root, resolved)
    old = read_existing_text(resolved, rel) if resolved.exists() else None
    if old == content:
        return f"no change: {rel} already has this content"
    encode(content)  # refuse unwritable text before anything else happens
    if not dry_run:
        write_text(resolved, rel, content)
    return with_note(unified_diff(rel, old, content), dry_run)


def patch_files(root: Path, patch: str, dry_run: bool) -> str:
    plans = plan_patch(root, parse_patch(patch))
    diff = "".join(
        unified_diff(plan.rel, plan.old, plan.new) for plan in plans if plan.old != plan.new
    )
    if not diff:
        return "no change: the patch leaves every file as it was"
    if not dry_run:
        commit(plans)
    return with_note(diff, dry_run)


# ----- server -------------------------------------------------------------------------------


def create_server(root: Path) -> MCPServer:
    server = MCPServer(
        "edit",
        instructions=(
            f"Edit text files inside the repository root {root}. Every tool returns the "
            "unified diff of its change; pass dry_run=true to preview without writing."
        ),
    )
    # Tool calls run on worker threads; one edit at a time keeps two read-modify-write
    # edits of the same file from losing one of them.
    lock = threading.Lock()

    @server.tool(annotations=EDITS, structured_output=False)
    def replace_in_file(path: str, old: str, new: str, dry_run: bool = False) -> str:
        """Replace the text `old` with `new` in a file. `old` must occur exactly once: copy
        it from the file, whitespace included, with enough surrounding lines to be unique.
        Returns the unified diff.
        """
        with lock:
            return replace_once(root, path, old, new, dry_run)

    @server.tool(annotations=EDITS, structured_output=False)
    def write_file(path: str, content: str, dry_run: bool = False) -> str:
        """Write a whole file (created with its parent directories if missing, replaced if
        present). Returns the unified diff.
        """
        with lock:
            return write_whole(root, path, content, dry_run)

    @server.tool(annotations=EDITS, structured_output=False)
    def apply_patch(patch: str, dry_run: bool = False) -> str:
        """Apply a unified diff to one or more files: '--- a/PATH' and '+++ b/PATH' headers,
        then @@ hunks (' ' context, '-' removed, '+' added); '--- /dev/null' creates a file.
        Hunks are found by their context, so line numbers may be off. If any hunk fails,
        nothing is written. Returns the unified diff of the result.
        """
        with lock:
            return patch_files(root, patch, dry_run)

    return server


def main() -> None:
    parser = make_arg_parser("edit", "MCP server: edit files inside a root, atomically.")
    args = parser.parse_args()
    create_server(resolve_root(args.root)).run()


if __name__ == "__main__":
    main()
