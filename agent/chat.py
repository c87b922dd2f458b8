"""`turnout chat`: a terminal client that gives any model the tools of any MCP servers.

Models (`--model`):

    local                     the in-process runtime with the default model (local:NAME, FILE.gguf)
    ollama/NAME               Ollama's OpenAI-compatible API ($OLLAMA_HOST, else localhost:11434)
    http://HOST:PORT/v1[#M]   any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio);
                              without #M the server's first model
    openai/M, anthropic/M     a cloud API (key from the environment)

Tools: turnout's own servers on the current directory (files, edit, tests, git) unless
`--no-builtin-tools`, plus every server of each `--mcp FILE` (`mcpServers` JSON; `./.mcp.json`
when no file is given). Every request goes through the policy router with the chosen model as
its only target, so the repository's policy still decides what may leave the machine. Tool
calls are parsed and validated against their schemas by the runtime; a call that is not valid is
sent back to the model with the reason, a bounded number of times, and never runs. Calls go
through the approvals (`agent/approvals.py`), asked inline.

The conversation is kept in the cache directory between sessions (`/new` starts over);
`--json` answers one prompt (from the arguments or stdin) with one JSON object and keeps no
history.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlparse

from pydantic import BaseModel, Field
from turnout.agent.paths import cache_dir
from turnout.runtimes.base import ChatModel, ChatRequest, ChatResponse, Message
from turnout.runtimes.errors import PolicyRefusal, RuntimeFailure, UsageError

if TYPE_CHECKING:  # the MCP client takes a second to import; `turnout --help` should not wait
    from turnout.agent.approvals import ApprovalPolicy, GuardedHost
    from turnout.agent.host import McpHost, ServerSpec

# The modes of agent/approvals.py, named here so that building the CLI imports nothing heavy.
APPROVAL_MODES = ("ask", "auto-edit", "full-auto")

SYSTEM_PROMPT = """\
You are turnout chat, an assistant on the user's machine with tools. When a question is about \
the user's files, git repository or tests, call the right tool yourself first (never tell the \
user to run it), then answer from its result in plain words."""

HELP = """\
/model [SPEC]    show the model, or switch to SPEC (local, ollama/NAME, http://HOST:PORT/v1)
/tools           list the tools, by server, with what the approval policy does for each
/route           show where the last request went and why (the policy router's decision)
/approvals [M]   show the approval mode, or set it: ask, auto-edit, full-auto
/new             start a new conversation (the old one is forgotten)
/help            this list
/quit            leave (Ctrl-D does too)"""

MODEL_FORMS = (
    "local, local:NAME, FILE.gguf, ollama/NAME, http://HOST:PORT/v1[#MODEL], openai/MODEL or "
    "anthropic/MODEL"
)


class ChatSettings(BaseModel):
    """How a chat session behaves."""

    max_tool_rounds: int = Field(default=6, description="tool calls the model may chain per turn")
    max_reasks: int = Field(default=2, description="re-asks after an invalid tool call, per turn")
    max_tokens: int = Field(default=1024, description="tokens per model reply")
    temperature: float = Field(default=0.0, description="0 = greedy")
    context_chars: int = Field(default=16_000, description="history sent to the model, at most")
    tool_result_chars: int = Field(default=8_000, description="of each tool result kept in history")
    history_messages: int = Field(default=200, description="messages kept between sessions")


class ToolActivity(BaseModel):
    name: str
    arguments: dict[str, Any]
    is_error: bool
    result: str


class TurnResult(BaseModel):
    """What one user turn produced."""

    reply: str = ""
    exit_status: str = "answered"  # answered | max_tool_rounds | refused | error
    tool_calls: list[ToolActivity] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    model: str = ""
    route: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str = ""


# ----- where things live ------------------------------------------------------------------------


class ChatHistory:
    """The conversation, kept as JSON between sessions (mode 0600: it is the user's content)."""

    def __init__(self, path: Path, keep: int) -> None:
        self.path = path
        self.keep = keep

    def load(self) -> list[Message]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Message.model_validate(item) for item in data.get("messages", [])]
        except (OSError, ValueError):
            return []

    def save(self, messages: list[Message]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = trim_start(messages[-self.keep :])
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"messages": [m.model_dump() for m in kept]}, handle)
        os.replace(temp, self.path)


def trim_start(messages: list[Message]) -> list[Message]:
    """Drop leading messages a model cannot start from: tool results without their call."""
    start = 0
    while start < len(messages) and messages[start].role in ("tool", "assistant"):
        start += 1
    return messages[start:]


# ----- models ---------------------------------------------------------------------------------


def target_for(spec: str, environ: dict[str, str] | None = None) -> Any:
    """The router's `TargetConfig` for a `--model` value."""
    from turnout.router.policy import TargetConfig

    env = dict(os.environ) if environ is None else environ
    if spec == "local" or spec.startswith("local:"):
        from turnout.runtimes import models

        name = spec.partition(":")[2] or models.DEFAULT_MODEL
        return TargetConfig(runtime="llama_cpp", location="local", model=name)
    if spec.endswith(".gguf"):
        return TargetConfig(runtime="llama_cpp", location="local", model=spec)
    if spec.startswith("ollama/") and len(spec) > len("ollama/"):
        host = env.get("OLLAMA_HOST") or "http://localhost:11434"
        if "://" not in host:
            host = f"http://{host}"
        return TargetConfig(
            runtime="openai_compat", location="local", model=spec.removeprefix("ollama/"),
            base_url=host.rstrip("/") + "/v1", timeout_s=600, max_attempts=2,
        )
    if spec.startswith(("http://", "https://")):
        url, _, model = spec.partition("#")
        url = url.rstrip("/")
        location = "local" if is_loopback(url) else "cloud"
        return TargetConfig(
            runtime="openai_compat", location=location, model=model or first_model(url),
            base_url=url, timeout_s=600, max_attempts=2,
        )
    for provider in ("openai", "anthropic"):
        if spec.startswith(f"{provider}/") and len(spec) > len(provider) + 1:
            return TargetConfig(runtime=provider, location="cloud", model=spec.split("/", 1)[1])
    raise UsageError(f"--model {spec!r} is not a model turnout knows how to reach; use {MODEL_FORMS}")


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def first_model(base_url: str) -> str:
    """The first model an OpenAI-compatible server lists (GET /models)."""
    import httpx

    try:
        reply = httpx.get(f"{base_url}/models", timeout=10)
        reply.raise_for_status()
        listed = reply.json().get("data") or []
    except (httpx.HTTPError, ValueError) as exc:
        raise UsageError(
            f"could not list the models of {base_url} ({exc}); is the server running? "
            f"Name the model with {base_url}#MODEL"
        ) from None
    if not listed:
        raise UsageError(f"{base_url} lists no models; name one with {base_url}#MODEL")
    return str(listed[0]["id"])


class _NoLocalModel:
    """Stands in for the in-process model when the chosen target is remote; never called."""

    name = "no-local-model"

    def chat(self, request: ChatRequest) -> ChatResponse:
        raise RuntimeFailure("no local model is loaded in this chat; switch with /model local")


def build_router(
    spec: str, repo: Path, logger: Any, progress: Callable[[str], None] | None = None
) -> Any:
    """A policy router whose only target is the chosen model, with the repository's labels.
    `progress` hears about long prompt evaluations on the in-process model."""
    from turnout.router.audit import AuditLog
    from turnout.router.policy import load_policy
    from turnout.router.router import PolicyRouter
    from turnout.router.targets import build_targets

    target = target_for(spec)
    policy = load_policy(repo).model_copy(update={"targets": {"chat": target}})
    local: ChatModel = _NoLocalModel()
    if target.runtime == "llama_cpp":
        from turnout.runtimes.llama_cpp import LlamaCppConfig, LlamaCppModel

        local = LlamaCppModel(LlamaCppConfig(model=target.model), progress=progress)
    models, unavailable = build_targets(policy, local, logger=logger)
    if "chat" in unavailable:
        raise UsageError(f"--model {spec}: {unavailable['chat']}")
    audit = AuditLog(cache_dir() / "chat" / "audit.jsonl") if policy.audit.enabled else None
    return PolicyRouter(policy, models, repo=repo, logger=logger, audit=audit)


# ----- one conversation -------------------------------------------------------------------------


class ChatSession:
    """The conversation loop: model reply, tool calls through the guarded host, repeat."""

    def __init__(
        self,
        model: ChatModel,
        tools: GuardedHost,
        *,
        settings: ChatSettings | None = None,
        history: list[Message] | None = None,
        show: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.model = model
        self.tools = tools
        self.settings = settings or ChatSettings()
        self.messages: list[Message] = list(history or [])
        self.show = show
        self.last_request: ChatRequest | None = None

    def send(self, text: str) -> TurnResult:
        self.messages.append(Message(role="user", content=text))
        result = TurnResult()
        reasks = 0
        rounds = 0
        while True:
            request = ChatRequest(
                messages=[Message(role="system", content=SYSTEM_PROMPT), *self._context()],
                tools=self.tools.list_tools(),
                max_tokens=self.settings.max_tokens,
                temperature=self.settings.temperature,
            )
            self.last_request = request
            try:
                response = self.model.chat(request)
            except PolicyRefusal as exc:
                result.exit_status, result.error = "refused", str(exc)
                return result
            except RuntimeFailure as exc:
                result.exit_status, result.error = "error", str(exc)
                return result
            result.model, result.route = response.model, response.route
            result.prompt_tokens += response.usage.prompt_tokens
            result.completion_tokens += response.usage.completion_tokens
            if response.tool_calls:
                if rounds >= self.settings.max_tool_rounds:
                    result.exit_status = "max_tool_rounds"
                    result.reply = response.text
                    self.messages.append(Message(role="assistant", content=response.text))
                    return result
                rounds += 1
                self._run_calls(response, result)
                continue
            if response.problems and reasks < self.settings.max_reasks:
                # The malformed call never enters the history: the model sees what was wrong.
                reasks += 1
                result.problems.extend(response.problems)
                self.show("(the model's tool call was not valid; asking again)")
                self.messages.append(Message(role="user", content=invalid_call_note(response.problems)))
                continue
            result.problems.extend(response.problems)
            result.reply = response.text
            self.messages.append(Message(role="assistant", content=response.text))
            return result

    def _run_calls(self, response: ChatResponse, result: TurnResult) -> None:
        self.messages.append(
            Message(role="assistant", content=response.text, tool_calls=response.tool_calls)
        )
        for call in response.tool_calls:
            self.show(f"-> {call.name} {json.dumps(call.arguments, ensure_ascii=False)[:300]}")
            outcome = self.tools.call_tool(call.name, call.arguments)
            self.show(summarise(outcome.content, outcome.is_error))
            result.tool_calls.append(
                ToolActivity(
                    name=call.name, arguments=call.arguments,
                    is_error=outcome.is_error, result=outcome.content,
                )
            )
            kept = outcome.content
            if len(kept) > self.settings.tool_result_chars:
                kept = kept[: self.settings.tool_result_chars] + "\n... (cut)"
            self.messages.append(
                Message(
                    role="tool", name=call.name, tool_call_id=call.id,
                    content=("ERROR: " if outcome.is_error else "") + kept,
                )
            )

    def _context(self) -> list[Message]:
        """The latest messages that fit the budget, starting at a user message."""
        budget = self.settings.context_chars
        kept: list[Message] = []
        for message in reversed(self.messages):
            size = len(message.content) + sum(len(json.dumps(c.arguments)) for c in message.tool_calls)
            if kept and size > budget:
                break
            budget -= size
            kept.append(message)
        return trim_start(list(reversed(kept))) or self.messages[-1:]


def invalid_call_note(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems)
    return f"Your tool call was not valid and was not run:\n{listed}\nCorrect it, or answer in words."


def summarise(content: str, is_error: bool, lines: int = 12) -> str:
    shown = content.splitlines()
    text = "\n".join(f"   {line[:200]}" for line in shown[:lines])
    if len(shown) > lines:
        text += f"\n   ... ({len(shown) - lines} more lines)"
    return ("<- ERROR\n" if is_error else "<-\n") + text


# ----- the command ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="*", help="with --json: the prompt (default: read stdin)")
    parser.add_argument("--model", default=os.environ.get("TURNOUT_CHAT_MODEL", "local"),
                        help=f"{MODEL_FORMS} (default: local; env TURNOUT_CHAT_MODEL)")
    parser.add_argument("--mcp", action="append", type=Path, default=[], metavar="FILE",
                        help="an mcpServers JSON file; repeatable (default: ./.mcp.json if present)")
    parser.add_argument("--no-builtin-tools", action="store_true",
                        help="leave out turnout's own files, edit, tests and git servers")
    parser.add_argument("--approval-mode", choices=APPROVAL_MODES, default=None,
                        help="ask (default), auto-edit or full-auto; overrides the policy's "
                        "[approvals] mode and the mcpServers file's")
    parser.add_argument("--json", action="store_true",
                        help="answer one prompt non-interactively and print one JSON object")


def load_servers(args: argparse.Namespace, repo: Path) -> tuple[list[ServerSpec], ApprovalPolicy]:
    from turnout.agent.approvals import ApprovalPolicy, with_policy
    from turnout.agent.host import builtin_servers, load_mcp_config
    from turnout.router.policy import load_policy

    files: list[Path] = list(args.mcp)
    if not files and (repo / ".mcp.json").is_file():
        files = [repo / ".mcp.json"]
    configured: list[ServerSpec] = []
    policy = ApprovalPolicy()
    for path in files:
        configured += load_mcp_config(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("approvals"), dict):
            policy = ApprovalPolicy.model_validate(data["approvals"])
    # A configured server named like one of ours replaces it: the user's file has the last word.
    names = {spec.name for spec in configured}
    builtins = [] if args.no_builtin_tools else builtin_servers(repo, git=True)
    servers = [spec for spec in builtins if spec.name not in names] + configured
    rules = load_policy(repo).approvals  # the repository's policy comes before the user's file
    return servers, with_policy(policy, rules.mode, rules.tools, args.approval_mode)


@contextlib.contextmanager
def chat_events(directory: Path) -> Iterator[Any]:
    """The router's events for chat sessions (hashes and sizes, never payloads), as JSON lines."""
    from turnout.agent.run import run_logger

    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "events.jsonl").open("a", encoding="utf-8") as stream:
        yield run_logger(stream, "chat")


def cmd_chat(args: argparse.Namespace) -> int:
    from turnout.agent.approvals import GuardedHost, ToolPins, tool_pins_path
    from turnout.agent.host import McpHost

    repo = Path.cwd()
    servers, policy = load_servers(args, repo)
    out = sys.stderr
    chat_dir = cache_dir() / "chat"
    with chat_events(chat_dir) as logger, (chat_dir / "servers.log").open("a") as errlog:
        if args.json:
            prompt = " ".join(args.prompt) if args.prompt else sys.stdin.read()
            if not prompt.strip():
                raise UsageError("turnout chat --json needs a prompt: as arguments or on stdin")
            router = build_router(
                args.model, repo, logger, lambda line: print(f"turnout: {line}", file=out, flush=True)
            )
            with McpHost(servers, errlog=errlog, roots=[repo], strict=False) as host:
                warn_failed(host, out)
                guarded = GuardedHost(
                    host, policy, pins=ToolPins(tool_pins_path()),
                    notify=lambda line: print(f"turnout: {line}", file=out),
                )
                result = ChatSession(router, guarded).send(prompt)
            result.model = args.model
            print(json.dumps(result.model_dump(), indent=2))
            return 0 if result.exit_status == "answered" else 1
        return interactive(args, repo, servers, policy, logger, errlog, chat_dir)


def warn_failed(host: McpHost, out: TextIO) -> None:
    for name, why in host.failed_servers().items():
        print(f"turnout: MCP server {name!r} is not available: {why}", file=out)


def interactive(
    args: argparse.Namespace,
    repo: Path,
    servers: list[ServerSpec],
    policy: ApprovalPolicy,
    logger: Any,
    errlog: TextIO,
    chat_dir: Path,
) -> int:
    from turnout.agent.approvals import (
        MODES,
        GuardedHost,
        ToolPins,
        decide,
        terminal_asker,
        tool_pins_path,
    )
    from turnout.agent.host import McpHost

    say = print
    readline = enable_line_editing(chat_dir / "input_history")
    say(f"turnout chat: loading {args.model} ...")

    def progress(line: str) -> None:
        say(f"  ({line})")

    router = build_router(args.model, repo, logger, progress)
    model_spec = args.model
    history = ChatHistory(chat_dir / "history.json", ChatSettings().history_messages)
    with McpHost(servers, errlog=errlog, roots=[repo], strict=False) as host:
        warn_failed(host, sys.stdout)
        guarded = GuardedHost(
            host, policy, pins=ToolPins(tool_pins_path()),
            asker=terminal_asker, notify=lambda line: say(f"turnout: {line}"),
        )
        session = ChatSession(router, guarded, history=history.load(), show=say)
        tools = guarded.list_tools()
        connected = len(servers) - len(host.failed_servers())
        say(f"model {model_spec}; {len(tools)} tools from {connected} MCP servers; "
            f"approvals: {policy.mode}. /help lists the commands.")
        if session.messages:
            say(f"(resumed a conversation of {len(session.messages)} messages; /new starts over)")
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                say("")
                break
            except KeyboardInterrupt:
                say("")
                continue
            if not line:
                continue
            if line.startswith("/"):
                command, _, rest = line.partition(" ")
                rest = rest.strip()
                if command in ("/quit", "/exit"):
                    break
                if command == "/help":
                    say(HELP)
                elif command == "/new":
                    session.messages = []
                    history.save([])
                    say("(new conversation)")
                elif command == "/tools":
                    for info in guarded.visible_tools():
                        rule = decide(guarded.policy, info)
                        say(f"  {info.name:<36} [{info.server}] {rule:<5} {info.description.strip()[:60]}")
                elif command == "/approvals":
                    if rest in MODES:
                        guarded.policy = guarded.policy.model_copy(update={"mode": rest})
                    say(f"approval mode: {guarded.policy.mode}")
                elif command == "/model":
                    if rest:
                        try:
                            session.model = build_router(rest, repo, logger, progress)
                            model_spec = rest
                        except UsageError as exc:
                            say(f"turnout: {exc}")
                    say(f"model: {model_spec}")
                elif command == "/route":
                    show_route(session, say)
                else:
                    say(f"unknown command {command}; /help lists them")
                continue
            try:
                result = session.send(line)
            except KeyboardInterrupt:
                say("(interrupted)")
                continue
            if result.error:
                say(f"turnout: {result.exit_status}: {result.error}")
            else:
                say(f"{model_spec}> {result.reply}")
            history.save(session.messages)
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.write_history_file(str(chat_dir / "input_history"))
    return 0


def show_route(session: ChatSession, say: Callable[[str], None]) -> None:
    explain = getattr(session.model, "explain", None)
    if session.last_request is None or explain is None:
        say("no request yet")
        return
    decision = explain(session.last_request)
    say(f"target: {decision.target or '(refused)'}  rule: {decision.rule}  work: {decision.work_class}")
    say(f"reason: {decision.reason}")
    for reason in decision.reasons:
        say(f"  - {reason}")


def enable_line_editing(history_file: Path) -> Any:
    try:
        import readline
    except ImportError:
        return None
    with contextlib.suppress(OSError):
        readline.read_history_file(str(history_file))
    return readline
