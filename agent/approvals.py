"""Approvals for tool calls, and tool definitions pinned by hash.

Modes, as in Codex:

    kind of tool                    ask     auto-edit   full-auto
    read (turnout's own servers)    allow   allow       allow
    read (any other server)         ask     allow       allow
    edit (turnout's own servers)    ask     allow       allow
    anything else                   ask     ask         allow

turnout's own test tool running the repository's configured test command (no `command`
argument) is allowed in every mode unless a per-tool rule says otherwise: the user chose that
command, not the model.

A tool's kind comes from its MCP annotations: `readOnlyHint` makes it a read; a tool that is
not read-only but declares `openWorldHint: false` only changes local state, an edit; anything
else may run commands or reach the network. Other servers' annotations are claims, so reads
from them still ask in `ask` mode and their edits ask until `full-auto`. Per-tool rules in the
policy (`allow`, `ask`, `deny`, matched as globs against `server__tool` or the exposed name)
come first. `deny` is final in every mode.

The approval prompt shows what would happen: the diff of an edit (the edit tools' dry run), the
command a test tool would run, or the arguments. Without someone to ask (scripts, CI), `ask`
means no.

Pins: the first time turnout sees a tool, its definition (description, schema, annotations) is
hashed and stored. When a server later offers a different definition under the same name (a
"rug pull" that slips new instructions into a description), the tool is hidden from the model
and blocked until a person has seen the difference and approved it again, in every mode.
turnout's own servers are not pinned: their definitions change only with turnout itself.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from turnout.agent.host import McpHost, ToolInfo, exposed_name
from turnout.agent.paths import cache_dir
from turnout.runtimes.base import ToolResult, ToolSpec
from turnout.runtimes.errors import UsageError

ApprovalMode = Literal["ask", "auto-edit", "full-auto"]
Rule = Literal["allow", "ask", "deny"]
ToolKind = Literal["read", "edit", "command"]
Decision = Literal["yes", "no", "always"]

MODES: tuple[ApprovalMode, ...] = ("ask", "auto-edit", "full-auto")


class ApprovalPolicy(BaseModel):
    """Which tool calls run without asking."""

    mode: ApprovalMode = Field(default="ask", description="ask, auto-edit or full-auto")
    tools: dict[str, Rule] = Field(
        default_factory=dict,
        description="per-tool rules by glob over server__tool or the exposed name, e.g. "
        '{"git__git_commit": "deny", "fs__read_*": "allow"}',
    )


def with_policy(
    approvals: ApprovalPolicy, policy_mode: ApprovalMode | None, policy_tools: dict[str, Rule],
    cli_mode: ApprovalMode | None = None,
) -> ApprovalPolicy:
    """`approvals` (from an mcpServers file, or the default) under the repository policy's
    `[approvals]`: its tool rules first, so its `deny` is final; the mode from the command line,
    else the policy, else `approvals`."""
    tools = dict(policy_tools)
    tools.update({glob: rule for glob, rule in approvals.tools.items() if glob not in tools})
    return ApprovalPolicy(mode=cli_mode or policy_mode or approvals.mode, tools=tools)


class ApprovalRequest(BaseModel):
    """What a person is asked to approve."""

    tool: str  # the exposed name
    server: str
    reason: str  # why this needs approval, one line
    preview: str  # the diff, the command, the arguments, or the definition change
    changed_definition: bool = False


Asker = Callable[[ApprovalRequest], Decision]


def tool_kind(info: ToolInfo) -> ToolKind:
    annotations = info.annotations
    if annotations.get("read_only_hint") is True:
        return "read"
    if annotations.get("open_world_hint") is False:
        return "edit"
    return "command"


def decide(policy: ApprovalPolicy, info: ToolInfo, arguments: dict[str, Any] | None = None) -> Rule:
    """The rule for one tool (and, given `arguments`, for one call) under the policy, before
    anyone is asked. A per-tool rule is final."""
    for name in (info.name, exposed_name(info.server, info.tool)):
        for pattern, rule in policy.tools.items():
            if fnmatch.fnmatchcase(name, pattern):
                return rule
    if arguments is not None and runs_configured_tests(info, arguments):
        # The repository's own test command, chosen by the user (--test-command or the
        # server's default), not by the model: the agent's basic move, never asked about.
        return "allow"
    if policy.mode == "full-auto":
        return "allow"
    kind = tool_kind(info)
    if kind == "read":
        return "allow" if info.trusted or policy.mode == "auto-edit" else "ask"
    if kind == "edit" and info.trusted and policy.mode == "auto-edit":
        return "allow"
    return "ask"


def runs_configured_tests(info: ToolInfo, arguments: dict[str, Any]) -> bool:
    """A call of turnout's own test tools without a command of the model's choosing: the suite,
    or one of its tests traced."""
    return info.trusted and info.tool in {"run_tests", "trace_test"} and not arguments.get("command")


# ----- pins ------------------------------------------------------------------------------------


def tool_pins_path() -> Path:
    """One pin file per user, shared by chat and run: a definition pinned in one is checked in
    the other."""
    return cache_dir() / "tool-pins.json"


class Pin(BaseModel):
    hash: str
    definition: dict[str, Any]
    pinned_at: str


# The reviewed tool definitions a team commits at the root of its repository.
COMMITTED_PINS = "turnout-pins.json"


def committed_key(info: ToolInfo) -> str:
    """A committed pin names server and tool only: the command line differs between machines."""
    return f"{info.server}/{info.tool}"


def load_committed_pins(repo: Path) -> dict[str, Pin] | None:
    """REPO/turnout-pins.json (None: there is none); a file that does not read is an error,
    never an empty file that would hide nothing or everything by accident."""
    path = repo / COMMITTED_PINS
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {key: Pin.model_validate(value) for key, value in raw.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"{path} is not a valid pins file ({str(exc).splitlines()[0][:200]}); write it again "
            "with `turnout pins --write` and review the diff before committing it"
        ) from None


def pin_of(info: ToolInfo) -> Pin:
    return Pin(hash=info.definition_hash(), definition=info.definition(),
               pinned_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


class ToolPins:
    """Tool definitions pinned by sha256 on first use, in a JSON file.

    The key names the server by its command line or URL too, so the same server name pointing
    at another program starts fresh pins instead of inheriting trust. Where the repository
    commits its reviewed pins (`turnout-pins.json`), those decide instead: a tool that is not
    in them, or differs from them, is hidden in every mode until the file changes.
    """

    def __init__(self, path: Path, committed: dict[str, Pin] | None = None) -> None:
        self.path = path
        self.committed = committed
        self._pins: dict[str, Pin] = {}
        if path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self._pins = {key: Pin.model_validate(value) for key, value in raw.items()}
            except (OSError, ValueError):
                # A damaged pin file must not silently trust everything: start over, but keep
                # the old file for a person to look at.
                path.replace(path.with_suffix(".damaged.json"))

    @staticmethod
    def key(info: ToolInfo) -> str:
        return f"{info.server}/{info.tool} @ {info.source}"

    def check(self, info: ToolInfo) -> Literal["new", "same", "changed", "unreviewed"]:
        if self.committed is not None:
            reviewed = self.committed.get(committed_key(info))
            return "same" if reviewed is not None and reviewed.hash == info.definition_hash() else "unreviewed"
        pin = self._pins.get(self.key(info))
        if pin is None:
            return "new"
        return "same" if pin.hash == info.definition_hash() else "changed"

    def pinned(self, info: ToolInfo) -> Pin | None:
        return self._pins.get(self.key(info))

    def pin(self, info: ToolInfo) -> None:
        self._pins[self.key(info)] = pin_of(info)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {key: pin.model_dump() for key, pin in sorted(self._pins.items())}
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temp, self.path)


def definition_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    before = json.dumps(old, indent=2, sort_keys=True).splitlines(keepends=True)
    after = json.dumps(new, indent=2, sort_keys=True).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, fromfile="pinned", tofile="offered now"))


# ----- the guarded host ------------------------------------------------------------------------


class GuardedHost:
    """A `ToolHost` that checks pins and the approval policy before a call reaches a server."""

    def __init__(
        self,
        host: McpHost,
        policy: ApprovalPolicy | None = None,
        *,
        pins: ToolPins | None = None,
        asker: Asker | None = None,
        notify: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.host = host
        self.policy = policy or ApprovalPolicy()
        self.pins = pins
        self.asker = asker
        self.notify = notify
        self._always: set[str] = set()  # tools approved for the rest of the session
        self._blocked: dict[str, str] = {}  # exposed name -> why it is withheld

    # ----- ToolHost ----------------------------------------------------------------------------

    def list_tools(self) -> list[ToolSpec]:
        """The tools a model may see: every server's current tools, minus changed definitions
        that nobody approved."""
        return [info.spec() for info in self.visible_tools()]

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        info = self.host.tool_info(name)
        if info is None:
            return self.host.call_tool(name, arguments)  # the host words the unknown-tool error
        if info.name in self._blocked:
            return ToolResult(content=self._blocked[info.name], is_error=True)
        if self.pins is not None and not self._pin_ok(info):
            return ToolResult(content=self._blocked[info.name], is_error=True)
        rule = decide(self.policy, info, arguments)
        if rule == "deny":
            return ToolResult(
                content=f"tool {info.name!r} is denied by the approval policy; do not call it again",
                is_error=True,
            )
        if rule == "ask" and info.name not in self._always:
            preview, early = self._preview(info, arguments)
            if early is not None:
                return early  # the dry run already failed: nothing to approve
            request = ApprovalRequest(
                tool=info.name,
                server=info.server,
                reason=f"{tool_kind(info)} tool in {self.policy.mode} mode",
                preview=preview,
            )
            decision = self._ask(request)
            if decision == "always":
                self._always.add(info.name)
            elif decision != "yes":
                return ToolResult(
                    content=f"the user did not approve this call of {info.name!r}; ask them what "
                    "to do instead, or try something else",
                    is_error=True,
                )
        return self.host.call_tool(info.name, arguments)

    # ----- pins --------------------------------------------------------------------------------

    def visible_tools(self, refresh: bool = True) -> list[ToolInfo]:
        tools = self.host.refresh_tools() if refresh else self.host.tools()
        if self.pins is None:
            return tools
        return [info for info in tools if self._pin_ok(info)]

    def _pin_ok(self, info: ToolInfo) -> bool:
        assert self.pins is not None
        if info.trusted:
            # turnout's own servers ship with turnout: their definitions change only when
            # turnout itself does, and an upgrade must not block its own tools.
            return True
        state = self.pins.check(info)
        if state == "unreviewed":
            if info.name not in self._blocked:
                reviewed = (self.pins.committed or {}).get(committed_key(info))
                why = "differs from" if reviewed is not None else "is not in"
                self._blocked[info.name] = (
                    f"tool {info.name!r} is hidden: its definition {why} the repository's reviewed "
                    f"{COMMITTED_PINS}; review it (`turnout pins`) and commit the file again to allow it"
                )
                self.notify(f"warning: {self._blocked[info.name]}")
            return False
        if state == "new":
            self.pins.pin(info)
            return True
        if state == "same":
            self._blocked.pop(info.name, None)
            return True
        if info.name in self._blocked:
            return False
        pinned = self.pins.pinned(info)
        assert pinned is not None
        request = ApprovalRequest(
            tool=info.name,
            server=info.server,
            reason=f"server {info.server!r} changed the definition of {info.tool!r} since it "
            f"was pinned on {pinned.pinned_at}",
            preview=definition_diff(pinned.definition, info.definition()),
            changed_definition=True,
        )
        self.notify(f"warning: {request.reason}")
        if self._ask(request) in ("yes", "always"):
            self.pins.pin(info)
            return True
        self._blocked[info.name] = (
            f"tool {info.name!r} is blocked: {request.reason}, and the change was not approved"
        )
        return False

    # ----- asking ------------------------------------------------------------------------------

    def _ask(self, request: ApprovalRequest) -> Decision:
        if self.asker is None:
            self.notify(f"not approved (nobody to ask): {request.tool}: {request.reason}")
            return "no"
        return self.asker(request)

    def _preview(self, info: ToolInfo, arguments: dict[str, Any]) -> tuple[str, ToolResult | None]:
        """What the call would do, for the prompt; and the result itself if a dry run failed."""
        properties = info.input_schema.get("properties") or {}
        # Only our own edit tools are known to have a side-effect-free dry run.
        if "dry_run" in properties and info.trusted:
            dry = self.host.call_tool(info.name, {**arguments, "dry_run": True})
            if dry.is_error:
                return "", dry
            return dry.content, None
        if "command" in properties or info.tool == "run_tests":
            command = arguments.get("command") or "(the server's default test command)"
            return f"$ {command}", None
        return json.dumps(arguments, indent=2, ensure_ascii=False), None


def terminal_asker(request: ApprovalRequest) -> Decision:
    """Asks on the terminal, on stderr so that stdout stays the command's output (`--json`);
    end of input means no."""
    lines = request.preview.splitlines()
    shown = [f"\n[approval] {request.tool} ({request.server}): {request.reason}"]
    shown += [f"  {line}" for line in lines[:60]]
    if len(lines) > 60:
        shown.append(f"  ... ({len(lines) - 60} more lines)")
    print("\n".join(shown), file=sys.stderr)
    while True:
        sys.stderr.write("approve? [y]es, [n]o, [a]lways for this tool: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            return "no"  # end of input
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return "yes"
        if answer in ("n", "no", ""):
            return "no"
        if answer in ("a", "always"):
            return "always"
