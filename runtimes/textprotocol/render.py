"""Rendering in the text tool protocol: the tools described in the system prompt, earlier calls
replayed as fenced JSON, tool results as user turns.

Provides `describe_tools`, `to_text_protocol` and the fence every call is written in
(`FENCE_OPEN`, `FENCE_CLOSE`; the grammar of `grammar.py` constrains decoding to the same one).
"""

from __future__ import annotations

import json
from typing import Any

from turnout.runtimes.base import Message, ToolSpec

__all__ = ["FENCE_CLOSE", "FENCE_OPEN", "call_check", "describe_tool", "describe_tools", "to_text_protocol"]

# One call per reply, as JSON in this fence: {"name": "<tool>", "arguments": {...}}.
FENCE_OPEN = "```json\n"
FENCE_CLOSE = "\n```"


# Said only where the model may answer without a call (`tool_choice` auto): a small model told
# only how to call a tool calls one for every question, fitting or not.
MAY_DECLINE = (
    "Call a tool only when one of them does what the user asks. When none of them does, or no "
    "tool is needed, answer in plain words, without a code fence."
)


def describe_tools(tools: list[ToolSpec], may_decline: bool = False) -> str:
    """Tools as compact signatures, each parameter's description, allowed values and default on
    its own line: small models follow signatures better than raw JSON Schemas, but they need the
    descriptions to fill optional parameters ("default is 'units'", "'all' for complex roots")."""
    lines = [
        "# Tools",
        "To use a tool, reply with exactly one JSON object in a ```json code fence:",
        '```json\n{"name": "<tool name>", "arguments": {<arguments>}}\n```',
        "One tool call per reply. The result comes back in the next message.",
        *([MAY_DECLINE] if may_decline else []),
        "",
        "Available tools:",
    ]
    lines.extend(describe_tool(tool) for tool in tools)
    return "\n".join(lines)


def describe_tool(tool: ToolSpec) -> str:
    """One tool as `describe_tools` lists it: its signature and summary, then a line per
    parameter that has a description, allowed values or a default."""
    props: dict[str, Any] = tool.input_schema.get("properties", {})
    required = set(tool.input_schema.get("required", []))
    params = []
    details = []
    for pname, schema in props.items():
        kind = _type_name(schema)
        params.append(f"{pname}: {kind}" if pname in required else f"{pname}?: {kind}")
        detail = _parameter_detail(schema)
        if detail:
            details.append(f"    {pname}: {detail}")
    summary = _clip(" ".join((tool.description or "").split()), _TOOL_DESCRIPTION_CHARS)
    return "\n".join([f"- {tool.name}({', '.join(params)}): {summary}", *details])


def call_check(tool: ToolSpec, request: str) -> str:
    """The question that checks a call of `tool` made in answer to `request`, asked of the
    model on its own, without the conversation: a small model shown tools calls one for almost
    any question, inventing arguments, yet asked about the one tool and the request alone it
    tells a fitting tool from a made-up use far better (`turnout eval toolcalls --category
    irrelevance`; docs/benchmarks.md)."""
    return (
        f"Function: {describe_tool(tool)}\n\nRequest: {request}\n\nCan this function, called with "
        "arguments taken from the request, give what the request asks for? Answer Yes or No."
    )


# Long enough for every BFCL description and our own tools' docstrings; a server that ships a
# page of prose per tool would otherwise fill a small model's context before the task begins.
_TOOL_DESCRIPTION_CHARS = 400
_PARAMETER_DESCRIPTION_CHARS = 200


def _parameter_detail(schema: dict[str, Any]) -> str:
    parts = []
    description = " ".join(str(schema.get("description", "")).split())
    if description:
        parts.append(_clip(description, _PARAMETER_DESCRIPTION_CHARS))
    if "enum" in schema:
        parts.append("one of " + ", ".join(json.dumps(v) for v in schema["enum"]))
    if "default" in schema:
        parts.append(f"default {json.dumps(schema['default'])}")
    return "; ".join(parts)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _type_name(schema: dict[str, Any]) -> str:
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_name(schema['items'])}"
    if "type" in schema:
        return str(schema["type"])
    options = [s.get("type", "any") for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return " | ".join(options) or "any"


def to_text_protocol(
    messages: list[Message], tools: list[ToolSpec], tool_choice: str | None = None
) -> list[dict[str, str]]:
    """Render the conversation in the text tool protocol, merging adjacent same-role turns.
    Under `tool_choice` auto (or None, which means it) the model is told it may answer in words."""
    out: list[dict[str, str]] = []
    described = describe_tools(tools, may_decline=tool_choice in (None, "auto")) if tools else ""

    def push(role: str, content: str) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + content
        else:
            out.append({"role": role, "content": content})

    for message in messages:
        if message.role == "system":
            content = message.content
            if tools:
                content = f"{content}\n\n{described}"
            push("system", content)
        elif message.role == "assistant":
            parts = [message.content] if message.content else []
            for call in message.tool_calls:
                body = json.dumps({"name": call.name, "arguments": call.arguments})
                parts.append(f"{FENCE_OPEN}{body}{FENCE_CLOSE}")
            push("assistant", "\n".join(parts))
        elif message.role == "tool":
            push("user", f"Result of {message.name or 'the tool'}:\n{message.content}")
        else:
            push("user", message.content)
    if tools and not any(m["role"] == "system" for m in out):
        out.insert(0, {"role": "system", "content": described})
    return out
