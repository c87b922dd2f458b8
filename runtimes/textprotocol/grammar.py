"""Constraining the text tool protocol: a GBNF grammar built from the tools' JSON schemas, for
the local runtime's constrained decoding.

Provides `tool_call_grammar(tools, tool_choice)`, the grammar text llama.cpp samples under, and
`compiled_grammar`, the same as a `llama_cpp.LlamaGrammar` (cached, since tools rarely change
within a run).

The grammar speaks the text protocol `render.py` writes and the local runtime prompts for: one
call as JSON in a ```json fence (`render.FENCE_OPEN`, `render.FENCE_CLOSE`),
`{"name": "<tool>", "arguments": {...}}`, with the arguments generated from the tool's
`inputSchema` by llama-cpp-python's own JSON-schema converter. So:

- `tool_choice="required"`: the reply is exactly one fenced call of one of the tools; every
  call the model can emit parses and validates (valid by construction).
- `tool_choice="<tool name>"`: the same, for that one tool.
- `tool_choice="auto"`: the reply is prose, or a fenced call, or prose then a fenced call. The
  prose may not open a ``` fence (a fence is always a call), so a call is never malformed; the
  call ends the reply, as the one-call-per-reply protocol asks.
- `tool_choice="none"`: no grammar.

One hole remains and is the runtime's to report: a reply cut off by `max_tokens` mid-call.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

from turnout.runtimes.base import ToolSpec
from turnout.runtimes.errors import UsageError
from turnout.runtimes.textprotocol.render import FENCE_CLOSE, FENCE_OPEN

__all__ = ["compiled_grammar", "tool_call_grammar"]

# Prose that never opens a ``` fence: single and double backticks (inline code) are fine.
_PROSE_RULES = r"""
prose ::= prose-char+ ("`" | "``")?
prose-char ::= [^`] | "`" [^`] | "``" [^`]
"""


def tool_call_grammar(tools: list[ToolSpec], tool_choice: str = "required") -> str | None:
    """The GBNF grammar for a reply under `tool_choice`, or None when nothing is constrained."""
    if tool_choice == "none" or not tools:
        return None
    if tool_choice in ("auto", "required"):
        chosen = tools
    else:
        chosen = [tool for tool in tools if tool.name == tool_choice]
        if not chosen:
            names = ", ".join(sorted(t.name for t in tools))
            raise UsageError(
                f"tool_choice {tool_choice!r} names no offered tool; use 'auto', 'required', "
                f"'none' or one of: {names}"
            )
    call_rules = _call_rules(chosen)
    call_block = f'call-block ::= "{_escape(FENCE_OPEN)}" call "{_escape(FENCE_CLOSE)}"'
    if tool_choice == "auto":
        root = "root ::= call-block | prose | prose call-block"
        return f"{root}\n{call_block}\n{_PROSE_RULES.strip()}\n{call_rules}"
    return f"root ::= call-block\n{call_block}\n{call_rules}"


# A reply in words only: what an `auto` reply becomes when the model is unsure it should call.
PROSE_GRAMMAR = f"root ::= prose\n{_PROSE_RULES.strip()}"


def compiled_grammar(tools: list[ToolSpec], tool_choice: str = "required") -> Any:
    """The grammar as a `llama_cpp.LlamaGrammar`, or None; cached by the grammar's text."""
    text = tool_call_grammar(tools, tool_choice)
    return None if text is None else _compile(text)


@lru_cache(maxsize=32)
def _compile(text: str) -> Any:
    from llama_cpp import LlamaGrammar  # imported late: only the local runtime needs it

    return LlamaGrammar.from_string(text, verbose=False)


def _call_rules(tools: list[ToolSpec]) -> str:
    """Rules for `call`: one JSON object per tool, its name fixed, its arguments its schema's."""
    from llama_cpp.llama_grammar import SchemaConverter

    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.name},
                "arguments": strict_arguments_schema(tool.input_schema),
            },
            "required": ["name", "arguments"],
        }
        for tool in tools
    ]
    schema: dict[str, Any] = variants[0] if len(variants) == 1 else {"oneOf": variants}
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    try:
        schema = converter.resolve_refs(schema, "tools")
        converter.visit(schema, "call")
    except (AssertionError, KeyError, ValueError, NotImplementedError) as exc:
        # The converter asserts on schema features it does not know; loosen and try once more.
        converter = SchemaConverter(
            prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
        )
        loose = {"oneOf": [_loosened(v) for v in variants]} if len(variants) > 1 else _loosened(
            variants[0]
        )
        try:
            converter.visit(loose, "call")
        except (AssertionError, KeyError, ValueError, NotImplementedError):
            raise UsageError(
                f"cannot build a grammar for these tool schemas ({exc}); "
                "pass tool_choice='none' to decode without one"
            ) from exc
    return converter.format_grammar()


def strict_arguments_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A tool's input schema with no room for invented arguments.

    An object schema that leaves `additionalProperties` open lets a model write any extra key;
    the validator would drop it anyway, so the grammar need not offer it. Keys the converter
    cannot use (titles, descriptions, defaults) are left in place: it ignores them.
    """
    root = schema or {"type": "object"}
    inlined = _inline_refs(copy.deepcopy(root), root, depth=0)
    inlined.pop("$defs", None)
    inlined.pop("definitions", None)
    _close_objects(inlined, depth=0)
    return inlined


def _inline_refs(node: Any, root: dict[str, Any], depth: int) -> Any:
    """Local `$ref`s replaced by what they point at: the tool's schema is nested in the call's,
    so "#/$defs/Edit" would no longer resolve. A ref deeper than 8 (a recursive type) becomes
    "any value", which the validator still checks after decoding."""
    if isinstance(node, list):
        return [_inline_refs(item, root, depth) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str):
        if depth >= 8 or not reference.startswith("#/"):
            return {}
        target: Any = root
        for part in reference[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return {}
        return _inline_refs(copy.deepcopy(target), root, depth + 1)
    return {key: _inline_refs(value, root, depth) for key, value in node.items()}


def _close_objects(node: Any, depth: int) -> None:
    if depth > 32:
        return
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        if node.get("additionalProperties") is True and "properties" in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _close_objects(item, depth + 1)


_LOOSE_KEEP = {"type", "properties", "required", "items", "enum", "const", "anyOf", "oneOf"}


def _loosened(schema: Any) -> Any:
    """The schema with only the keywords every converter handles (types, objects, lists)."""
    if isinstance(schema, list):
        return [_loosened(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept = {k: v for k, v in schema.items() if k in _LOOSE_KEEP}
    if "properties" in kept:
        kept["properties"] = {k: _loosened(v) for k, v in kept["properties"].items()}
    for key in ("items", "anyOf", "oneOf"):
        if key in kept:
            kept[key] = _loosened(kept[key])
    if isinstance(kept.get("type"), str) and kept["type"] not in {
        "object", "array", "string", "number", "integer", "boolean", "null"
    }:
        kept.pop("type")  # a non-JSON-Schema type name: accept any value
    return kept


def _escape(literal: str) -> str:
    return json.dumps(literal)[1:-1]
