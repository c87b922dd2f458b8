"""Taint: content read through a tool from a labelled path labels the run, for the rest of it.

The router sees requests, not files, so provenance is read from the conversation itself: each
tool result answers a call (matched by `tool_call_id`) whose arguments name the paths it read; a
path that matches a label's glob labels that result, and from then on the whole run. The label
sticks even after the content leaves the context window, because a model may have carried it
into its own words (a summary, a patch, a plan). Paths named in a way that brings the file's
content with them (tracebacks, `File x:` headers, diff headers, `path:line:` search hits) label
the request they appear in too.

Erring on the side of the label is deliberate: a call whose arguments name a labelled path
(even a listing or a write) taints the run, since its result or its content concerns that file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from turnout.router.scan import PathLabeler, mentioned_paths
from turnout.runtimes.base import ChatRequest


@dataclass(frozen=True, slots=True)
class TaintMark:
    """Why a request carries a label: which path matched which glob, and how it came in."""

    label: str
    glob: str
    path: str
    via: str  # "read_file result", "mentioned in a user message", ...

    def describe(self) -> str:
        return f"{self.label}: {self.path} matches {self.glob!r} ({self.via})"


class RunTaint:
    """The labels one run has picked up from labelled paths; they only ever grow."""

    def __init__(self, labeler: PathLabeler) -> None:
        self._labeler = labeler
        self._sticky: dict[tuple[str, str], TaintMark] = {}
        self._mentions: dict[str, list[str]] = {}  # content -> paths it names; histories repeat

    @property
    def marks(self) -> list[TaintMark]:
        return list(self._sticky.values())

    def observe(self, request: ChatRequest) -> list[TaintMark]:
        """Every mark that applies to `request`: those it brings, and those the run already had."""
        if not self._labeler.active:
            return []
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
                    for hit in self._labeler.labels_for(path):
                        yield TaintMark(hit.label, hit.glob, hit.path, f"named in a {call.name} call")
            if message.role == "tool" and message.tool_call_id in paths_of_call:
                tool, paths = paths_of_call[message.tool_call_id]
                for path in paths:
                    for hit in self._labeler.labels_for(path):
                        yield TaintMark(hit.label, hit.glob, hit.path, f"{tool} result")
            for path in self._mentioned(message.content):
                for hit in self._labeler.labels_for(path):
                    yield TaintMark(hit.label, hit.glob, hit.path, f"content shown in a {message.role} message")


def _path_like_strings(value: Any) -> Iterator[str]:
    """Strings in tool arguments that could name a file; patches are searched for their headers."""
    if isinstance(value, str):
        if "\n" in value:
            yield from mentioned_paths(value)
        elif 0 < len(value) <= 1000:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _path_like_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _path_like_strings(item)
