"""A chat session: the conversation loop over a model and a tool host, and its history.

`ChatSession.send` takes one user turn: the model's reply, each tool call it makes through the
tool host (the MCP servers behind the approvals, in `turnout chat`), the result back to the
model, until it answers in words or reaches the round limit. Tool calls are parsed and
validated against their schemas by the runtime; a call that is not valid is sent back to the
model with the reason, a bounded number of times, and never runs. `ChatHistory` keeps the
conversation between sessions. The terminal around it is `agent/cli/chat.py`; the model and
the tools come from `agent/compose.py`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from turnout.agent import prompts
from turnout.agent.run import RunMeta, new_run_id, utc_now, write_atomic
from turnout.agent.undo import RecordWrites, UndoResult, load_record, undo_run
from turnout.agent.wrappers import edited_paths
from turnout.router.atrest import private_dir, state_dir
from turnout.router.taint import TaintMark
from turnout.runtimes.base import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    Message,
    ToolHost,
    ToolResult,
    ToolSpec,
)
from turnout.runtimes.errors import PolicyRefusal, RuntimeFailure
from turnout.tools._common import unified_diff


class ChatSettings(BaseModel):
    """How a chat session behaves."""

    max_tool_rounds: int = Field(default=6, description="tool calls the model may chain per turn")
    max_reasks: int = Field(default=2, description="re-asks after an invalid tool call, per turn")
    max_tokens: int = Field(default=1024, description="tokens per model reply")
    temperature: float = Field(default=0.0, description="0 = greedy")
    context_chars: int = Field(default=16_000, description="history sent to the model, at most")
    tool_result_chars: int = Field(default=8_000, description="of each tool result kept in history")
    history_messages: int = Field(default=200, description="messages kept between sessions")
    drafter: str | None = Field(
        default="suffix",
        description="the in-process runtime's speculative drafter: a reply that writes a file "
        "back, or quotes what a tool returned, copies most of its text from the prompt",
    )


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

    def load_taint(self) -> list[TaintMark]:
        """The labels the conversation had picked up: they outlive the messages that brought
        them (a trimmed history, a restart), as a run's outlive its steps."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [TaintMark(**mark) for mark in data.get("taint", [])]
        except (OSError, ValueError, TypeError):
            return []

    def save(self, messages: list[Message], taint: list[TaintMark] | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = trim_start(messages[-self.keep :])
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"messages": [m.model_dump() for m in kept],
                       "taint": [dataclasses.asdict(mark) for mark in taint or []]}, handle)
        os.replace(temp, self.path)


def history_file(chat_dir: Path, repo: Path) -> Path:
    """The conversation of `repo`: one per repository, since what was read under one
    repository's labels must not follow the user into another."""
    key = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:16]
    return chat_dir / "history" / f"{key}.json"


def trim_start(messages: list[Message]) -> list[Message]:
    """Drop leading messages a model cannot start from: tool results without their call."""
    start = 0
    while start < len(messages) and messages[start].role in ("tool", "assistant"):
        start += 1
    return messages[start:]


class ChatSession:
    """The conversation loop: model reply, tool calls through the tool host, repeat."""

    def __init__(
        self,
        model: ChatModel,
        tools: ToolHost,
        *,
        settings: ChatSettings | None = None,
        history: list[Message] | None = None,
        show: Callable[[str], None] = lambda _: None,
        on_text: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self.tools = tools
        self.settings = settings or ChatSettings()
        self.messages: list[Message] = list(history or [])
        self.show = show
        self.on_text = on_text  # each reply's text as it is decoded, where the model can stream
        self.last_request: ChatRequest | None = None

    def send(self, text: str) -> TurnResult:
        self.messages.append(Message(role="user", content=text))
        result = TurnResult()
        reasks = 0
        rounds = 0
        while True:
            request = ChatRequest(
                messages=[Message(role="system", content=prompts.SYSTEM_CHAT), *self._context()],
                tools=self.tools.list_tools(),
                max_tokens=self.settings.max_tokens,
                temperature=self.settings.temperature,
                drafter=self.settings.drafter if self.settings.temperature == 0 else None,
                on_text=self.on_text,
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
                self.messages.append(Message(role="user", content=prompts.invalid_call(response.problems)))
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


class UndoableTurns:
    """A `ToolHost` wrapper for a conversation: the files one turn's tool calls write are
    recorded as a run of their own (`.turnout/runs/chat-ID`, its task the user's words), so
    `/undo` in the chat, or `turnout undo`, puts back what that answer changed. A turn that
    writes nothing leaves no run behind."""

    def __init__(self, host: ToolHost, repo: Path) -> None:
        self.host = host
        self.repo = repo.resolve()
        self.turns: list[str] = []  # run ids of this session's turns that wrote, oldest first
        self._text = ""
        self._writes: RecordWrites | None = None

    def begin(self, text: str) -> None:
        """A new user turn: its first write opens a run of its own."""
        self._text, self._writes = text, None

    def list_tools(self) -> list[ToolSpec]:
        return self.host.list_tools()

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        if self._writes is None and edited_paths(name, arguments):
            run_id = "chat-" + new_run_id()
            run_dir = self.repo / ".turnout" / "runs" / run_id
            state_dir(self.repo)
            private_dir(run_dir)
            first_line = (self._text.strip().splitlines() or [""])[0][:200]
            write_atomic(run_dir / "run.json", RunMeta(run_id=run_id, task=f"chat: {first_line}",
                                                      started=utc_now(), model="chat").model_dump_json(indent=2))
            self._writes = RecordWrites(self.host, self.repo, run_dir, run_id)
            self.turns.append(run_id)
        return (self._writes or self.host).call_tool(name, arguments)

    def diff(self) -> str:
        """What this session's answers changed that is still in place: each file against what it
        held before the session first wrote it."""
        before: dict[str, bytes | None] = {}
        for run_id in self.turns:
            record = load_record(self.repo / ".turnout" / "runs" / run_id)
            for rel, change in (record.files.items() if record and not record.undone else []):
                before.setdefault(rel, None if change.before is None else base64.b64decode(change.before))
        chunks = []
        for rel, old in sorted(before.items()):
            now = (self.repo / rel).read_bytes() if (self.repo / rel).is_file() else None
            if now != old:
                decode = lambda b: None if b is None else b.decode("utf-8", errors="replace")
                chunks.append(unified_diff(rel, decode(old), decode(now)))
        return "".join(chunks)

    def undo_last(self) -> UndoResult | None:
        """Undo this session's latest turn that changed files and is not undone yet (None: none)."""
        for run_id in reversed(self.turns):
            record = load_record(self.repo / ".turnout" / "runs" / run_id)
            if record is not None and record.files and not record.undone:
                return undo_run(self.repo, run_id)
        return None


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def summarise(content: str, is_error: bool, lines: int = 12) -> str:
    shown = content.splitlines()
    text = "\n".join(f"   {line[:200]}" for line in shown[:lines])
    if len(shown) > lines:
        text += f"\n   ... ({len(shown) - lines} more lines)"
    return ("<- ERROR\n" if is_error else "<-\n") + text
