"""The in-process local runtime: a GGUF model through llama-cpp-python.

Small instruct models do not reliably use a chat template's tool protocol (Qwen2.5-Coder-1.5B
answers a `tools=` request with JSON in a markdown fence, which llama-cpp-python returns as plain
text). So this runtime speaks one text protocol it can parse: the tools are described in the
system prompt, the model replies with a fenced JSON call, earlier calls are replayed in that same
form and tool results come back as user turns. Parsing and validation are turnout's job
(`turnout.runtimes.toolcalls`).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pydantic import BaseModel, Field
from turnout.runtimes import models
from turnout.runtimes.base import (
    ChatRequest,
    ChatResponse,
    GenerationStats,
    Message,
    ToolSpec,
    Usage,
)
from turnout.runtimes.errors import ModelError
from turnout.runtimes.toolcalls import parse_tool_calls


class LlamaCppConfig(BaseModel):
    """Settings of the in-process runtime."""

    model: str = Field(default=models.DEFAULT_MODEL, description="catalog name or .gguf path")
    n_ctx: int = Field(default=8192, description="context window in tokens")
    n_threads: int | None = Field(default=None, description="CPU threads; None = all cores")
    n_gpu_layers: int = Field(default=0, description="layers offloaded to a GPU build; -1 = all")
    seed: int = Field(default=0, description="sampling seed, for reproducible runs")


class LlamaCppModel:
    """A `ChatModel` over llama-cpp-python, loaded once and reused (its KV prefix cache too)."""

    def __init__(self, config: LlamaCppConfig | None = None) -> None:
        # Imported here so that `turnout --help` and the tests that never load a model stay fast.
        import llama_cpp

        self.config = config or LlamaCppConfig()
        path = models.resolve(self.config.model)
        self.name = f"llama_cpp:{self.config.model if self.config.model in models.CATALOG else path.name}"
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_threads=self.config.n_threads or os.cpu_count() or 1,
                n_gpu_layers=self.config.n_gpu_layers,
                seed=self.config.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"llama.cpp could not load {path}: {exc}; if it is a catalog model run "
                f"`turnout models verify` and `turnout models install`, else check the file is a GGUF"
            ) from exc
        self._llama_cpp = llama_cpp

    def chat(self, request: ChatRequest) -> ChatResponse:
        messages = to_text_protocol(request.messages, request.tools)
        ctx = self._llm.ctx
        self._llama_cpp.llama_perf_context_reset(ctx)
        started = time.perf_counter()
        result: Any = self._llm.create_chat_completion(
            messages=messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            seed=request.seed if request.seed is not None else self.config.seed,
        )
        wall = time.perf_counter() - started
        perf = self._llama_cpp.llama_perf_context(ctx)
        choice = result["choices"][0]
        raw = choice["message"].get("content") or ""
        usage = result.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        completion_tokens = int(usage.get("completion_tokens", 0))
        prefill_s = perf.t_p_eval_ms / 1000.0
        decode_s = perf.t_eval_ms / 1000.0 if perf.t_eval_ms > 0 else max(wall - prefill_s, 0.0)
        stats = GenerationStats(
            prompt_tokens=prompt_tokens,
            cached_prompt_tokens=max(prompt_tokens - int(perf.n_p_eval), 0),
            prefill_seconds=prefill_s,
            decode_seconds=decode_s,
            completion_tokens=completion_tokens,
        )
        parsed = parse_tool_calls(raw, request.tools)
        return ChatResponse(
            text=parsed.text,
            tool_calls=parsed.calls,
            problems=[p.message for p in parsed.problems],
            raw_text=raw,
            finish_reason=choice.get("finish_reason") or "stop",
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
            stats=stats,
            model=self.name,
        )


def describe_tools(tools: list[ToolSpec]) -> str:
    """Tools as compact signatures: small models follow these better than raw JSON Schemas."""
    lines = [
        "# Tools",
        "To use a tool, reply with exactly one JSON object in a ```json code fence:",
        '```json\n{"name": "<tool name>", "arguments": {<arguments>}}\n```',
        "One tool call per reply. The result comes back in the next message.",
        "",
        "Available tools:",
    ]
    for tool in tools:
        props: dict[str, Any] = tool.input_schema.get("properties", {})
        required = set(tool.input_schema.get("required", []))
        params = []
        for pname, schema in props.items():
            kind = _type_name(schema)
            params.append(f"{pname}: {kind}" if pname in required else f"{pname}?: {kind}")
        summary = (tool.description or "").strip().splitlines()
        lines.append(f"- {tool.name}({', '.join(params)}): {summary[0] if summary else ''}")
    return "\n".join(lines)


def _type_name(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return str(schema["type"])
    options = [s.get("type", "any") for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return " | ".join(options) or "any"


def to_text_protocol(messages: list[Message], tools: list[ToolSpec]) -> list[dict[str, str]]:
    """Render the conversation in the text tool protocol, merging adjacent same-role turns."""
    out: list[dict[str, str]] = []

    def push(role: str, content: str) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + content
        else:
            out.append({"role": role, "content": content})

    for message in messages:
        if message.role == "system":
            content = message.content
            if tools:
                content = f"{content}\n\n{describe_tools(tools)}"
            push("system", content)
        elif message.role == "assistant":
            parts = [message.content] if message.content else []
            for call in message.tool_calls:
                body = json.dumps({"name": call.name, "arguments": call.arguments})
                parts.append(f"```json\n{body}\n```")
            push("assistant", "\n".join(parts))
        elif message.role == "tool":
            push("user", f"Result of {message.name or 'the tool'}:\n{message.content}")
        else:
            push("user", message.content)
    if tools and not any(m["role"] == "system" for m in out):
        out.insert(0, {"role": "system", "content": describe_tools(tools)})
    return out
