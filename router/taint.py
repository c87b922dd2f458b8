"""Taint: content read through a tool from a labelled path labels the run, for the rest of it.

The router sees requests, not files, so provenance is read from the conversation itself: each
tool result answers a call (matched by `tool_call_id`) whose arguments name the paths it read; a
path that matches a label's glob labels that result, and from then on the whole run. The label
sticks even after the content leaves the context window, because a model may have carried it
into its own words (a summary, a patch, a plan). Paths named in a way that brings the file's
content with them (tracebacks, `File x:` headers, diff headers, `path:line:` search hits) label
the request they appear in too. Every name goes through `paths.spellings` (its real path, `..`
and symlinks resolved, the path part of `REV:path`), and each word of a command line is a name.

Content that arrives without a name (a test printing a labelled file, a diff, the model's own
restatement, the task text) is found by its fingerprints (`fingerprints.ContentIndex`) in every
message and every tool call's arguments, and labels the run the same way.

Erring on the side of the label is deliberate: a call whose arguments name a labelled path
(even a listing or a write) taints the run, since its result or its content concerns that file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from turnout.router.fingerprints import ContentIndex
from turnout.router.scan import PathLabeler, mentioned_paths
from turnout.runtimes.base import ChatRequest


@dataclass(frozen=True, slots=True)
class TaintMark:
    """Why a request carries a label: which path matched which glob, and how it came in."""

    label: str
    glob: str
    path: str
    via: str  # "read_file result", "mentioned in a user message", ...
    named: str = ""  # the name as written, when it differs from the path (a symlink, `REV:path`)

    def describe(self) -> str:
        spelled = f", named {self.named!r}" if self.named else ""
        return f"{self.label}: {self.path} matches {self.glob!r} ({self.via}{spelled})"


class RunTaint:
    """The labels one run has picked up from labelled paths and labelled content; they only
    ever grow."""

    def __init__(self, labeler: PathLabeler, content: ContentIndex | None = None) -> None:
        self._labeler = labeler
        self._content = content
        self._sticky: dict[tuple[str, str], TaintMark] = {}
        self._mentions: dict[str, list[str]] = {}  # content -> paths it names; histories repeat

    @property
    def marks(self) -> list[TaintMark]:
        return list(self._sticky.values())

    def adopt(self, marks: list[TaintMark]) -> None:
        """Carry another router's marks over (a chat that switched models is one conversation)."""
        for mark in marks:
            self._sticky.setdefault((mark.label, mark.path), mark)

    def observe(self, request: ChatRequest) -> list[TaintMark]:
        """Every mark that applies to `request`: those it brings, and those the run already had."""
        if not self._labeler.active:
            return []
        if self._content is not None:
            self._content.refresh()  # labelled files created or changed since the last look
        for mark in self._marks_in(request):
            known = self._sticky.get((mark.label, mark.path))
            # Keep the first mark of a path, unless a later one says its content was read.
            if known is None or (mark.via.endswith("result") and not known.via.endswith("result")):
                self._sticky[(mark.label, mark.path)] = mark
        return self.marks

    def _mentioned(self, content: str) -> list[str]:
        paths = self._mentions.get(content)
        if paths is None:
            if len(self._mentions) >= 512:
                self._mentions.pop(next(iter(self._mentions)))
            paths = self._mentions[content] = mentioned_paths(content)
        return paths

    def _marks_in(self, request: ChatRequest) -> Iterator[TaintMark]:
        paths_of_call: dict[str, tuple[str, list[str]]] = {}
        for message in request.messages:
            for call in message.tool_calls:
                paths = list(_path_like_strings(call.arguments))
                paths_of_call[call.id] = (call.name, paths)
                for path in paths:
                    hits = self._labeler.labels_for(path)
                    if hits and self._content is not None:
                        self._content.index_path(path)  # a labelled file written or read now
                    for hit in hits:
                        yield TaintMark(hit.label, hit.glob, hit.path, f"named in a {call.name} call", hit.named)
                yield from self._content_marks(_strings_of(call.arguments), f"{call.name} call arguments")
            if message.role == "tool" and message.tool_call_id in paths_of_call:
                tool, paths = paths_of_call[message.tool_call_id]
                for path in paths:
                    for hit in self._labeler.labels_for(path):
                        yield TaintMark(hit.label, hit.glob, hit.path, f"{tool} result", hit.named)
            for path in self._mentioned(message.content):
                for hit in self._labeler.labels_for(path):
                    yield TaintMark(hit.label, hit.glob, hit.path, f"content shown in a {message.role} message", hit.named)
            via = f"{message.name or 'tool'} result" if message.role == "tool" else f"{message.role} message"
            yield from self._content_marks([message.content], f"its content, in a {via}")

    def _content_marks(self, texts: list[str], via: str) -> Iterator[TaintMark]:
        """Marks for labelled content in `texts`, wherever it came from (fingerprints)."""
        if self._content is None:
            return
        for text in texts:
            for hit in self._content.files_in(text):
                yield TaintMark(hit.label, hit.glob, hit.path, via)


# The words of a command line or a query that could name a file: `cat secrets/x | head`,
# `python -c "print(open('secrets/x').read())"`, `--input=secrets/x`.
_WORD = re.compile(r"[^\s'\"`()<>|;&=,\[\]{}$]{1,1000}")


def _strings_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings_of(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings_of(item)]
    return []


def _path_like_strings(value: Any) -> Iterator[str]:
    """Strings in tool arguments that could name a file: the whole string, each word of a
    command line, and the headers of a patch (a string over several lines)."""
    if isinstance(value, str):
        if "\n" in value:
            yield from mentioned_paths(value)
            for line in value.splitlines()[:200]:
                if not line.startswith(("+", "-", " ", "@")):  # a patch's lines are its content
                    yield from _WORD.findall(line)
        elif 0 < len(value) <= 1000:
            yield value
            words = _WORD.findall(value)
            if len(words) > 1 or (words and words[0] != value):
                yield from words
    elif isinstance(value, dict):
        for item in value.values():
            yield from _path_like_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _path_like_strings(item)
