"""Cross-cutting concerns as wrappers over the `ToolHost` seam, one concern each.

A wrapper takes a host and is a host, so concerns compose (`ProtectTests(GuardedHost(mcp))`)
and the agent loop never branches on them.
"""

from __future__ import annotations

import re
from typing import Any

from turnout.agent.testrun import is_test_file
from turnout.runtimes.base import ToolHost, ToolResult, ToolSpec

EDIT_TOOLS = frozenset({"replace_in_file", "write_file", "apply_patch"})
_PATCH_TARGET = re.compile(r"(?m)^\+\+\+ (?:b/)?(\S+)")


def edited_paths(name: str, arguments: dict[str, Any]) -> list[str]:
    """The repository paths an edit tool call would write."""
    if name == "apply_patch":
        patch = str(arguments.get("patch", ""))
        return [p for p in _PATCH_TARGET.findall(patch) if p != "/dev/null"]
    path = arguments.get("path")
    return [str(path)] if name in EDIT_TOOLS and isinstance(path, str) else []


class ProtectTests:
    """Refuses edits to test files: the tests are the specification, and a small model that
    cannot fix the code will happily "fix" the assertion instead."""

    def __init__(self, host: ToolHost) -> None:
        self.host = host

    def list_tools(self) -> list[ToolSpec]:
        return self.host.list_tools()

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        protected = [rel for rel in edited_paths(name, arguments) if is_test_file(rel)]
        if protected:
            return ToolResult(
                content=f"refused: {', '.join(protected)} is a test file and the tests are the "
                "specification. Fix the code under test instead.",
                is_error=True,
            )
        return self.host.call_tool(name, arguments)
