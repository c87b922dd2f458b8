"""MCP server "edit": change files by search/replace, whole-file write, or unified diff.

Run as `python -m turnout.tools.edit --root PATH`; it speaks MCP over stdio. Every path is
confined to the root, and nothing is written under `.git` (see `_common.confine_writable`:
git's config names programs git runs). Writes are atomic (temp file, fsync,
`os.replace`) and keep the file's mode; `apply_patch` writes all files or none. Every tool
returns the unified diff of what it changed.

`replace_in_file` forgives the slips small models make in `old` (indentation, trailing
whitespace, tabs for spaces, one misremembered line) when that still leaves exactly one
match; see `find_unique`, a pure function usable in-process. The result says when it did.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from turnout.tools._common import (
    ToolServer,
    atomic_write,
    confine_writable,
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


def not_found_hint(text: str, old: str, name: str, closest: Block | None = None) -> str:
    """Explain a failed search so a small model can retry with text that is really there.

    `closest` is the fuzzy tier's best block when there was one; the lines most like `old`'s
    first line are quoted too, each with its line number.
    """
    message = f"old text was not found in {name}."
    if old.strip() and " ".join(old.split()) in " ".join(text.split()):
        message += " It differs from the file only in whitespace or indentation."
    file_lines = [content(line) for line in text.split("\n")]
    old_lines = old.strip("\n").split("\n")
    if closest is not None:
        message += (
            f"\nThe closest block, {closest.lines()}, is {percent(closest.score)} similar (a "
            f"fuzzy match needs {percent(FUZZY_MIN_SIMILARITY)}):\n"
        )
        message += numbered(
            file_lines[closest.start : closest.start + closest.length], closest.start + 1
        )
    first = next((line for line in old_lines if line.strip()), "")
    positions = closest_positions(file_lines, first) if first else []
    positions = [p for p in positions if closest is None or p != closest.start]
    for position in positions:
        block = file_lines[position : position + len(old_lines)]
        message += f"\nClosest text in the file, from line {position + 1}:\n"
        message += numbered(block, position + 1)
    if not positions and closest is None:
        message += "\nNo similar line was found."
    message += (
        "\nCopy old exactly from the file (whitespace and indentation included) and try "
        "again; read_file shows the current text."
    )
    return printable(message)


# ----- forgiving search/replace matching ----------------------------------------------------
#
# Small models copy `old` slightly wrong in predictable ways: indentation, trailing whitespace,
# tabs for spaces, one misremembered line. The matcher tries tiers from strict to loose and
# stops at the first tier that finds anything: one match is applied, two or more are refused
# (a looser tier would only find more), so a forgiving match is never a guess between places.

# A fuzzy match must be this similar to `old`, and the runner-up this much less similar.
FUZZY_MIN_SIMILARITY = 0.9
FUZZY_MARGIN = 0.05
# An `old` smaller than this (and on one line) is too little evidence for a fuzzy match.
FUZZY_MIN_CHARS = 20
# The fuzzy scan costs a similarity ratio per block; beyond this many lines it is skipped.
FUZZY_MAX_FILE_LINES = 20_000
# How many blocks below the runner-up floor are scored only to name the closest in a miss.
FUZZY_HINT_SCORES = 200
# Places quoted in an "occurs N times" error; every line number is still named.
MAX_QUOTED_PLACES = 10


class EditMismatch(ValueError):
    """`old` does not identify exactly one place in the text; the message says how to fix it."""


class Tier(Enum):
    """How `old` was matched, strictest first; the value completes "(matched ... at lines)"."""

    EXACT = "exactly"
    TRAILING_WHITESPACE = "ignoring trailing whitespace"
    INDENTATION = "ignoring indentation"
    FUZZY = "fuzzily"


@dataclass(frozen=True)
class Match:
    """The one place `old` matched: `text[start:end]` is what a replacement overwrites.

    For the line-wise tiers the span runs from the start of the first matched line to the end
    of the last one's content, so the file's own final line ending stays in place.
    """

    tier: Tier
    start: int
    end: int
    first_line: int  # 1-based
    last_line: int
    similarity: float = 1.0
    old_lines: tuple[str, ...] = ()  # `old` split into lines, for re-indenting `new`
    eol: str = "\n"  # the line ending that joins the lines of `new`
    to_crlf: bool = False  # exact tier: `old` matched only once given the file's CRLF endings

    @property
    def note(self) -> str:
        """A first line for the tool's result when a looser tier was used, else ""."""
        if self.tier is Tier.EXACT:
            return ""
        lines = f"lines {self.first_line}-{self.last_line}"
        if self.first_line == self.last_line:
            lines = f"line {self.first_line}"
        if self.tier is Tier.FUZZY:
            return f"(matched fuzzily, {percent(self.similarity)} similar, at {lines})"
        return f"(matched {self.tier.value} at {lines})"


@dataclass(frozen=True)
class Block:
    """A run of file lines: 0-based `start`, `length` lines, and its similarity to `old`."""

    start: int
    length: int
    score: float

    def overlaps(self, other: Block) -> bool:
        return self.start < other.start + other.length and other.start < self.start + self.length

    def lines(self) -> str:
        return f"lines {self.start + 1}-{self.start + self.length}"


def percent(score: float) -> str:
    # Floor, so 89.9% never reads as the 90% a fuzzy match needs.
    return f"{int(score * 100)}%"


def content(line: str) -> str:
    """A line without its ending ("\\n" or "\\r\\n")."""
    return line.removesuffix("\n").removesuffix("\r")


def block_lines(text: str) -> list[str]:
    """`text` as lines for matching: CRLF as LF, one final newline dropped (it ends the last
    line; it does not start an empty one)."""
    return text.replace("\r\n", "\n").removesuffix("\n").split("\n")


def numbered(lines: list[str], first: int) -> str:
    """Lines quoted with their 1-based numbers, "  12 | text", so a retry can aim at them."""
    width = max(4, len(str(first + len(lines) - 1)))
    return "\n".join(
        f"{number:>{width}} |" + (f" {line}" if line else "")
        for number, line in enumerate(lines, start=first)
    )


def is_fuzzy_candidate(old: str) -> bool:
    """A tiny `old` matches too many places loosely; it must match exactly or by whitespace."""
    nonblank = [line for line in block_lines(old) if line.strip()]
    return len(nonblank) >= 2 or len(old.strip()) >= FUZZY_MIN_CHARS


def exact_starts(text: str, old: str) -> list[int]:
    """Offsets of the non-overlapping occurrences of `old`, as `str.count` counts them."""
    starts: list[int] = []
    index = text.find(old)
    while index != -1:
        starts.append(index)
        index = text.find(old, index + len(old))
    return starts


def line_starts(keys: list[str], wanted: list[str]) -> list[int]:
    """0-based indexes where the lines `wanted` occur in `keys`, both already normalized."""
    last = len(keys) - len(wanted)
    return [
        index
        for index in range(last + 1)
        if keys[index] == wanted[0] and keys[index : index + len(wanted)] == wanted
    ]


def fuzzy_blocks(keys: list[str], wanted: list[str]) -> list[Block]:
    """Blocks of len(wanted) lines, or one more or one fewer, with their similarity to `wanted`.

    Lines are compared stripped, so indentation never costs similarity. The exact ratio is
    slow, so every block first gets a cheap upper bound (from lengths, then shared
    characters), and blocks are scored best bound first: all that could reach the runner-up
    floor, then a few more for the "closest block" hint of a miss.
    """
    target = "\n".join(wanted)
    floor = FUZZY_MIN_SIMILARITY - FUZZY_MARGIN
    bounds = sorted(block_bounds(keys, target, len(wanted), floor), key=lambda b: -b[0])
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(target)
    blocks: list[Block] = []
    best = 0.0
    hint_budget = FUZZY_HINT_SCORES
    for bound, start, length in bounds:
        if bound < floor:
            if bound <= best or hint_budget == 0:
                break
            hint_budget -= 1
        matcher.set_seq1("\n".join(keys[start : start + length]))
        score = matcher.ratio()
        best = max(best, score)
        blocks.append(Block(start, length, score))
    return blocks


def block_bounds(
    keys: list[str], target: str, lines: int, floor: float
) -> list[tuple[float, int, int]]:
    """(upper bound of the similarity, start, length) for every candidate block.

    The bound from lengths alone costs nothing; only blocks it leaves above `floor` pay for
    the tighter bound from the characters they share with `target`.
    """
    counts = Counter(target)
    sums = [0]
    for key in keys:
        sums.append(sums[-1] + len(key) + 1)
    bounds: list[tuple[float, int, int]] = []
    for length in sorted({max(lines - 1, 1), lines, lines + 1}):
        for start in range(len(keys) - length + 1):
            size = sums[start + length] - sums[start] - 1
            total = size + len(target)
            bound = 2 * min(size, len(target)) / total if total else 1.0
            if bound >= floor:
                shared = sum((Counter("\n".join(keys[start : start + length])) & counts).values())
                bound = min(bound, 2 * shared / total)
            bounds.append((bound, start, length))
    return bounds


def rank(blocks: list[Block], length: int) -> list[Block]:
    """Best first: highest score, then the length nearest `old`'s, then the earliest."""
    return sorted(blocks, key=lambda b: (-b.score, abs(b.length - length), b.start))


def runner_up(ranked: list[Block]) -> Block | None:
    """The best block elsewhere: blocks overlapping the best are the same place, shifted."""
    return next((block for block in ranked[1:] if not block.overlaps(ranked[0])), None)


def find_unique(text: str, old: str, name: str = "the file") -> Match:
    """The one place where `old` matches `text`, trying the tiers strictest first.

    Raises EditMismatch when a tier matches more than once (naming every place) or when no
    tier matches (quoting the closest lines). `name` is the file's name for those messages.
    """
    if not old:
        raise EditMismatch(
            "old is empty; give the exact text to replace (use write_file to write a whole file)"
        )
    exact = find_exact(text, old, name)
    if exact is not None:
        return exact
    if not old.strip():
        raise EditMismatch(not_found_hint(text, old, name))
    lines = split_lines(text)
    wanted = block_lines(old)
    for tier, key in (
        (Tier.TRAILING_WHITESPACE, str.rstrip),
        (Tier.INDENTATION, str.strip),
    ):
        keys = [key(content(line)) for line in lines]
        starts = line_starts(keys, [key(line) for line in wanted])
        if len(starts) > 1:
            raise EditMismatch(ambiguous_message(lines, starts, len(wanted), name, tier))
        if starts:
            return line_match(text, lines, starts[0], len(wanted), tier, wanted)
    return find_fuzzy(text, lines, old, wanted, name)


def find_exact(text: str, old: str, name: str) -> Match | None:
    """Tier 1: `old` as a substring, or as one with the file's CRLF endings; None if absent."""
    starts = exact_starts(text, old)
    crlf = False
    # The file has Windows line endings; the model almost always sends "\n".
    if not starts and "\r\n" in text and "\n" in old:
        starts = exact_starts(text, to_crlf(old))
        crlf = bool(starts)
        old = to_crlf(old) if crlf else old
    if not starts:
        return None
    if len(starts) > 1:
        lines = split_lines(text)
        firsts = [line_number(text, start) - 1 for start in starts]
        raise EditMismatch(ambiguous_message(lines, firsts, old.count("\n") + 1, name, Tier.EXACT))
    start = starts[0]
    end = start + len(old)
    first = line_number(text, start)
    last = line_number(text, max(end - 1, start))
    return Match(Tier.EXACT, start, end, first, last, to_crlf=crlf)


def line_match(
    text: str,
    lines: list[str],
    index: int,
    length: int,
    tier: Tier,
    wanted: list[str],
    similarity: float = 1.0,
) -> Match:
    """A Match covering file lines index..index+length-1 (0-based) for a line-wise tier."""
    start = sum(len(line) for line in lines[:index])
    last = lines[index + length - 1]
    end = sum(len(line) for line in lines[index : index + length - 1]) + start + len(content(last))
    first = lines[index]
    eol = first[len(content(first)) :] or dominant_eol(lines)
    return Match(tier, start, end, index + 1, index + length, similarity, tuple(wanted), eol)


def find_fuzzy(text: str, lines: list[str], old: str, wanted: list[str], name: str) -> Match:
    """Tier 4: the one block clearly most similar to `old`, or EditMismatch explaining why not."""
    if not is_fuzzy_candidate(old) or len(lines) > FUZZY_MAX_FILE_LINES:
        raise EditMismatch(not_found_hint(text, old, name))
    keys = [content(line).strip() for line in lines]
    ranked = rank(fuzzy_blocks(keys, [line.strip() for line in wanted]), len(wanted))
    best = ranked[0] if ranked else None
    if best is None or best.score < FUZZY_MIN_SIMILARITY:
        raise EditMismatch(not_found_hint(text, old, name, best))
    second = runner_up(ranked)
    if second is not None and second.score > best.score - FUZZY_MARGIN + 1e-9:
        raise EditMismatch(fuzzy_ambiguous_message(lines, best, second, name))
    return line_match(text, lines, best.start, best.length, Tier.FUZZY, wanted, best.score)


def replace_match(text: str, match: Match, new: str) -> str:
    """`text` with the matched span replaced by `new`, fitted to the file for loose tiers.

    Line-wise tiers join `new`'s lines with the file's line ending; the indentation tiers also
    re-indent `new` to where the file really has the block.
    """
    if match.tier is Tier.EXACT:
        replacement = to_crlf(new) if match.to_crlf else new
        return text[: match.start] + replacement + text[match.end :]
    end = match.end
    if not new:
        # Deleting whole lines takes their ending too, not just their text.
        ending = next((eol for eol in ("\r\n", "\n") if text.startswith(eol, end)), "")
        return text[: match.start] + text[end + len(ending) :]
    new_lines = block_lines(new)
    if match.tier in (Tier.INDENTATION, Tier.FUZZY):
        file_lines = text[match.start : match.end].replace("\r\n", "\n").split("\n")
        tabs = uses_tabs(file_lines, split_lines(text))
        new_lines = reindent(new_lines, list(match.old_lines), file_lines, tabs)
    return text[: match.start] + match.eol.join(new_lines) + text[end:]


def apply_replacement(text: str, old: str, new: str, name: str = "the file") -> str:
    """`text` with the one match of `old` replaced by `new`; raises EditMismatch otherwise."""
    return replace_match(text, find_unique(text, old, name), new)


# ----- re-indentation -----------------------------------------------------------------------


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def uses_tabs(block: list[str], file_lines: list[str]) -> bool:
    """Whether the file indents with tabs here: the block decides, else the whole file."""
    for lines in (block, file_lines):
        indents = [indent_of(line) for line in lines if line.strip() and indent_of(line)]
        if indents:
            tabbed = sum(1 for indent in indents if indent.startswith("\t"))
            return tabbed * 2 > len(indents)
    return False


def space_unit(lines: list[str]) -> int:
    """Spaces per indentation level in `lines`: the smallest step between indent widths."""
    widths = sorted({len(indent_of(line)) for line in lines if line.strip()})
    steps = [b - a for a, b in itertools.pairwise(widths)] or [w for w in widths if w]
    return min(steps) if steps else 4


def tab_size(old: list[str], block: list[str], tabs: bool) -> int:
    """Columns per tab, so a level of tabs on one side equals a level of spaces on the other.

    When the file uses tabs and `old` spaces (or the reverse), a tab is one level of the
    spaced side; otherwise any consistent size works.
    """
    spaced = [line for line in (old if tabs else block) if line.strip()]
    tabbed = [line for line in (block if tabs else old) if line.strip()]
    if any("\t" in indent_of(line) for line in spaced) or not any(
        "\t" in indent_of(line) for line in tabbed
    ):
        return 4
    for a, b in zip(spaced, tabbed):
        count = indent_of(b).count("\t")
        width = len(indent_of(a))
        if count and width and width % count == 0 and indent_of(b) == "\t" * count:
            return width // count
    return space_unit(spaced)


def pair_lines(a: list[str], b: list[str]) -> list[int | None]:
    """For each line of `a`, the index of its counterpart in `b` (compared stripped).

    Equal runs pair one to one, replaced runs pair in order; a line with no counterpart takes
    its nearest paired neighbour's (previous first), so it shifts with the lines around it.
    """
    pairs: list[int | None] = [None] * len(a)
    keys_a = [line.strip() for line in a]
    keys_b = [line.strip() for line in b]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            for k in range(i2 - i1):
                pairs[i1 + k] = j1 + min(k, j2 - j1 - 1)
    return fill_gaps(pairs)


def fill_gaps(values: list[int | None]) -> list[int | None]:
    """Each None replaced by the nearest earlier value, else the nearest later one."""
    filled = list(values)
    for index in range(1, len(filled)):
        if filled[index] is None:
            filled[index] = filled[index - 1]
    for index in range(len(filled) - 2, -1, -1):
        if filled[index] is None:
            filled[index] = filled[index + 1]
    return filled


def reindent(new: list[str], old: list[str], block: list[str], tabs: bool) -> list[str]:
    """`new` moved by the indentation offset between `old` and the file's `block`.

    The offset is measured in columns per line of `old` against its counterpart in the file;
    usually every line gives the same offset, which is then applied to every line of `new`
    (each line of `new` uses the offset of the `old` line it corresponds to). The result is
    written in the file's style, tabs or spaces.
    """
    size = tab_size(old, block, tabs)

    def width(line: str) -> int:
        return len(indent_of(line).expandtabs(size))

    to_block = pair_lines(old, block)
    offsets: list[int | None] = [
        width(block[j]) - width(line)
        if j is not None and line.strip() and block[j].strip()
        else None
        for line, j in zip(old, to_block)
    ]
    offsets = fill_gaps(offsets)
    to_old = pair_lines(new, old)
    result: list[str] = []
    for line, i in zip(new, to_old):
        offset = offsets[i] if i is not None else None
        if not line.strip():
            result.append(line)
            continue
        columns = max(width(line) + (offset or 0), 0)
        indent = "\t" * (columns // size) + " " * (columns % size) if tabs else " " * columns
        result.append(indent + line.lstrip())
    return result


# ----- mismatch messages --------------------------------------------------------------------


def ambiguous_message(
    lines: list[str], starts: list[int], length: int, name: str, tier: Tier
) -> str:
    """Refuse a match in several places, naming each so `old` can be made unique."""
    how = "" if tier is Tier.EXACT else f" when matched {tier.value}"
    shown = ", ".join(str(start + 1) for start in starts)
    message = (
        f"old occurs {len(starts)} times in {name}{how} (starting at lines {shown}); include "
        "more surrounding lines in old so that it matches exactly once. The places:"
    )
    for start in starts[:MAX_QUOTED_PLACES]:
        quoted = [content(line) for line in lines[start : start + min(length, 2)]]
        message += "\n" + numbered(quoted, start + 1)
    if len(starts) > MAX_QUOTED_PLACES:
        message += f"\n... and {len(starts) - MAX_QUOTED_PLACES} more"
    return printable(message)


def fuzzy_ambiguous_message(lines: list[str], best: Block, second: Block, name: str) -> str:
    """Refuse a fuzzy match whose runner-up is nearly as close: the edit could land in either."""
    message = (
        f"old was not found exactly in {name}, and two blocks are about equally similar to it: "
        f"{best.lines()} ({percent(best.score)}) and {second.lines()} "
        f"({percent(second.score)}), so neither was changed. Copy old exactly from the file "
        "and include more surrounding lines so that it matches exactly once:"
    )
    for block in (best, second):
        quoted = [content(line) for line in lines[block.start : block.start + 2]]
        message += "\n" + numbered(quoted, block.start + 1)
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


def without_endings(line: str) -> str:
    return line.rstrip("\r\n")


def find_block(
    lines: list[str], block: list[str], expected: int, start: int
) -> tuple[int, Tier] | None:
    """Where `block` occurs in `lines` at or after `start`, and by which tier.

    Exact text first (line endings aside), then ignoring trailing whitespace: either picks
    the occurrence nearest to `expected`, since the hunk header says where it should be.
    Last, ignoring indentation, but only where that finds a single place: a loose match is
    trusted only when it is unambiguous.
    """
    last = len(lines) - len(block)
    for tier, normalize in ((Tier.EXACT, without_endings), (Tier.TRAILING_WHITESPACE, str.rstrip)):
        wanted = [normalize(text) for text in block]
        found = [
            position
            for position in range(start, last + 1)
            if all(normalize(lines[position + j]) == wanted[j] for j in range(len(block)))
        ]
        if found:
            return min(found, key=lambda position: (abs(position - expected), position)), tier
    keys = [content(line).strip() for line in lines[start:]]
    found = line_starts(keys, [text.strip() for text in block])
    if len(found) == 1:
        return start + found[0], Tier.INDENTATION
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
        message += numbered(plain[at : at + len(block)], at + 1)
    elif plain:
        at = min(max(expected, 0), len(plain) - 1)
        message += f"\nThe file has, from line {at + 1}:\n"
        message += numbered(plain[at : at + len(block)], at + 1)
    message += (
        "\nNothing was written for any file. Re-read the file with read_file and make the "
        "context lines match it exactly, or use replace_in_file."
    )
    return printable(message)


def added_lines(hunk: Hunk, lines: list[str], position: int, tier: Tier) -> list[str]:
    """The hunk's new side, re-indented to the file when its context matched only that way."""
    new_side = [text for tag, text in hunk.lines if tag != "-"]
    if tier is not Tier.INDENTATION:
        return new_side
    block = [content(line) for line in lines[position : position + len(hunk.old_side())]]
    return reindent(new_side, hunk.old_side(), block, uses_tabs(block, lines))


def apply_hunks(text: str, hunks: list[Hunk], rel: str, notes: list[str] | None = None) -> str:
    """Apply `hunks` to `text`; a hunk matched loosely adds a line to `notes` saying so."""
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
        tier = Tier.EXACT
        if block:
            found = find_block(lines, block, expected, start)
            if found is None:
                raise ToolError(hunk_failure(rel, number, hunk, lines, expected))
            position, tier = found
            if tier is not Tier.EXACT and notes is not None:
                notes.append(
                    f"(hunk {number} of {rel} matched {tier.value} at lines {position + 1}-"
                    f"{position + len(block)})"
                )
        else:
            position = min(max(expected, start), len(lines))
        new_side = iter(added_lines(hunk, lines, position, tier))
        replacement: list[str] = []
        cursor = position
        for tag, _ in hunk.lines:
            if tag == " ":
                next(new_side)
                replacement.append(lines[cursor])  # the file's own bytes, not the patch's
                cursor += 1
            elif tag == "-":
                cursor += 1
            else:
                replacement.append(next(new_side) + eol)
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


def plan_patch(
    root: Path, files: list[FilePatch], notes: list[str] | None = None
) -> list[PlannedFile]:
    """Apply every hunk in memory; raise before anything is written if one fails."""
    planned: dict[Path, PlannedFile] = {}
    for file_patch in files:
        name = file_patch.new_path or file_patch.old_path
        assert name is not None
        path = confine_writable(root, name)
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
        result = apply_hunks(current, file_patch.hunks, rel, notes)
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
    """The replace_in_file tool: one forgiving match of `old` (see find_unique), then the diff,
    headed by a note when `old` matched only loosely so the agent and the user both see it."""
    resolved = confine_writable(root, path)
    rel = relative(root, resolved)
    text = read_existing_text(resolved, rel)
    try:
        match = find_unique(text, old, rel)
    except EditMismatch as exc:
        raise ToolError(str(exc)) from None
    updated = replace_match(text, match, new)
    if updated == text:
        return f"no change: old and new are the same, {rel} is unchanged"
    if not dry_run:
        write_text(resolved, rel, updated)
    result = with_note(unified_diff(rel, text, updated), dry_run)
    return f"{match.note}\n{result}" if match.note else result


def write_whole(root: Path, path: str, content: str, dry_run: bool) -> str:
    resolved = confine_writable(root, path)
    rel = relative(root, resolved)
    old = read_existing_text(resolved, rel) if resolved.exists() else None
    if old == content:
        return f"no change: {rel} already has this content"
    encode(content)  # refuse unwritable text before anything else happens
    if not dry_run:
        write_text(resolved, rel, content)
    return with_note(unified_diff(rel, old, content), dry_run)


def patch_files(root: Path, patch: str, dry_run: bool) -> str:
    notes: list[str] = []
    plans = plan_patch(root, parse_patch(patch), notes)
    diff = "".join(
        unified_diff(plan.rel, plan.old, plan.new) for plan in plans if plan.old != plan.new
    )
    if not diff:
        return "no change: the patch leaves every file as it was"
    if not dry_run:
        commit(plans)
    result = with_note(diff, dry_run)
    return "".join(f"{note}\n" for note in notes) + result


# ----- server -------------------------------------------------------------------------------


def create_server(root: Path) -> ToolServer:
    server = ToolServer(
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
        Small slips in indentation or whitespace are forgiven (and `new` re-indented) when
        they leave a single match; the result says so. Returns the unified diff.
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
