"""The shared vocabulary of turnout, and its seams.

Everything else imports this module; it imports nothing of turnout's. A reader learns the
architecture here:

    agent loop --ChatRequest--> ChatModel (the router is one) --> a runtime (local, remote, ...)
        ^                                                              |
        +------------------- ChatResponse (text, tool calls, usage, stats)
    agent loop --ToolCall--> ToolHost (MCP servers over stdio) --> ToolResult

The runtimes live in rooms under `runtimes/`: `local/` (llama.cpp in process), `remote/`
(OpenAI, Anthropic, OpenAI-compatible servers), `testing/` (doubles), and `textprotocol/`, the
text tool protocol they share. `errors.py` holds the exception tree.

Messages, tool specs and tool calls are plain pydantic models so that they serialise into the
checkpointer and the run log without adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(BaseModel):
    """One call of a tool, as parsed from a model's reply."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    """One chat message. `tool_calls` only on assistant messages, `tool_call_id` only on tool ones."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(BaseModel):
    """A tool as a model sees it: the MCP tool's name, description and JSON Schema."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class GenerationStats(BaseModel):
    """How one generation went, measured by the runtime that produced it. A runtime fills what
    it can measure; the speculation counters (`drafted` .. `drafter`) only the local one."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    # Of the cached prompt tokens, those whose keys and values a new process read from disk
    # (the local runtime's prefix cache) instead of from its own earlier calls.
    disk_prompt_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    completion_tokens: int = 0
    drafted: int = 0  # tokens a drafter proposed and the target verified
    accepted: int = 0  # drafted tokens the target accepted
    repetition_aborted: bool = False  # the reply degenerated into a repeated unit and was ended
    tokens_saved: int = 0  # max_tokens not spent because the reply was ended early
    draft_steps: int = 0  # verify steps that carried at least one drafted token
    drafter: str = ""  # which drafter ran ("none", "suffix", "draft-model"); "" = library path
    peak_rss_mb: float = 0.0  # the process's peak resident memory during the call (Linux)
    # Under tool_choice auto, the local runtime's check of a call made in answer to the user:
    # the model's Yes to "is that call right?", and whether the reply became words for it.
    call_check: float | None = None
    declined_call: bool = False

    @property
    def mean_accepted_length(self) -> float:
        """Drafted tokens accepted per verify step that carried a draft."""
        return self.accepted / self.draft_steps if self.draft_steps else 0.0

    @property
    def prefill_tps(self) -> float:
        evaluated = self.prompt_tokens - self.cached_prompt_tokens
        return evaluated / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tps(self) -> float:
        return self.completion_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0


class ChatRequest(BaseModel):
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    max_tokens: int = 1024
    temperature: float = 0.0
    seed: int | None = None
    # A hint for the router, set by the agent's guards after invalid calls or a loop: this is
    # hard work, send it to a stronger target where the policy allows.
    escalate: bool = False
    escalation_reason: str = ""
    # None or "auto": the model decides; "required": some tool; "none": no tool; else a tool's
    # name to force that call. Runtimes whose protocol cannot express it ignore it.
    tool_choice: str | None = None
    # The local runtime's speculative drafter for this call ("suffix", "draft-model", "none",
    # "off"), chosen by a policy; None keeps the runtime's configured one.
    drafter: str | None = None
    # How many independent completions to sample (temperature > 0). A runtime that can, samples
    # them together (the local one as parallel sequences sharing the prompt's KV cache) and
    # returns them all in `ChatResponse.candidates`; one that cannot returns one, and the caller
    # asks again with other seeds. Completion i uses seed `seed + i`.
    n: int = Field(default=1, ge=1)
    # Where the reply's text goes as it is decoded, piece by piece: a terminal that shows the
    # answer while it is written. Display only, so it is never serialised nor sent anywhere; a
    # runtime that cannot stream ignores it (the whole reply still comes back as usual).
    on_text: Callable[[str], None] | None = Field(default=None, exclude=True, repr=False)


class ChatResponse(BaseModel):
    """A model's reply. `tool_calls` holds calls that parsed; `raw_text` what the model emitted."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)  # calls that did not parse or validate
    raw_text: str = ""
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)
    stats: GenerationStats = Field(default_factory=GenerationStats)
    model: str = ""
    route: str = ""  # which target answered, filled in by the router
    attempts: int = 1  # upstream attempts this reply took, retries included (for the audit)
    # With `ChatRequest.n > 1`: every completion sampled, this one first; usage and stats above
    # then cover all of them (the prompt read once).
    candidates: list[ChatResponse] = Field(default_factory=list)


class ToolResult(BaseModel):
    """What a tool returned: its text, and whether the tool reported an error."""

    content: str
    is_error: bool = False


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers a chat request: a runtime, a fake, or the router in front of them."""

    name: str

    def chat(self, request: ChatRequest) -> ChatResponse: ...


@runtime_checkable
class ToolHost(Protocol):
    """Where tool calls go: the MCP host in production, an in-memory host in tests."""

    def list_tools(self) -> list[ToolSpec]: ...

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult: ...
