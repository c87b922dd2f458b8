"""Tool calls out of what models really emit: find them, repair them, validate them.

Provides `parse_tool_calls`, which reads a model's reply and returns its prose, the valid tool
calls in order of appearance, the calls that looked like calls but were invalid (each with a
message written to be shown back to the model), and notes of every repair made; and
`validate_call`, which checks one call's arguments against the tool's JSON Schema after safe,
schema-guided coercions.

Small local models rarely emit the tidy `tool_calls` field a cloud API returns. Qwen2.5-Coder-1.5B
puts the call as JSON in a markdown fence; Hermes-style models use `<tool_call>` tags; others
write bare JSON in prose, single-quoted Python dicts, trailing commas, double-encoded arguments
or numbers as strings. Everything repaired here is repaired only where the meaning is not in
doubt; everything else becomes a `ToolCallProblem` so the loop can re-ask, and never an exception.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.validators import validator_for
from pydantic import BaseModel, Field
from turnout.runtimes.base import ToolCall, ToolSpec

__all__ = ["ParsedReply", "ToolCallProblem", "parse_tool_calls", "validate_call"]


class ToolCallProblem(BaseModel):
    """A call that looked like a call but was invalid, described for the model that made it."""

    tool: str | None  # the tool name if one could be read
    message: str  # what was wrong and how to fix it, one or two short lines
    raw: str  # the offending snippet, truncated


class ParsedReply(BaseModel):
    """A model's reply split into prose, valid calls, problems and the repairs made."""

    text: str
    calls: list[ToolCall] = Field(default_factory=list)
    problems: list[ToolCallProblem] = Field(default_factory=list)
    repairs: list[str] = Field(default_factory=list)


RAW_LIMIT = 300
# Keys that name the tool, and keys that hold its arguments, across the shapes models emit.
NAME_KEYS = ("name", "tool", "tool_name", "function")
ARGUMENT_KEYS = ("arguments", "parameters", "args", "input", "params")
# Fence languages whose body is meant to be JSON; any other language is code unless it parses.
JSON_LANGUAGES = {"", "json", "jsonc", "json5", "jsonl", "tool_call", "tool_calls", "tool"}

_OPENER = re.compile(r"<tool_call\s*>|```|\{|\[\s*\{", re.IGNORECASE)
_TAG_OPEN = re.compile(r"<tool_call\s*>", re.IGNORECASE)
_TAG_CLOSE = re.compile(r"</tool_call\s*>", re.IGNORECASE)
_FENCE_OPEN = re.compile(r"```[ \t]*([A-Za-z][\w+#.-]*)?[ \t]*\n?")
_FENCE_CLOSE_AT_LINE_START = re.compile(r"^[ \t]*```", re.MULTILINE)
_OBJECT_START = re.compile(r"\{|\[\s*\{")
_WRAPPING_FENCE = re.compile(r"\s*```[\w+#.-]*[ \t]*\n?(.*?)(?:\n?[ \t]*```)?\s*", re.DOTALL)
# A quoted name-ish key with a string value, and a quoted arguments-ish key: how a call that
# does not parse is still recognised as a call (and its tool name read) rather than as prose.
_NAME_IN_TEXT = re.compile(r"""["'](?:name|tool|tool_name)["']\s*:\s*["']([^"'\\]{1,100})["']""")
_NAME_KEY = re.compile(r"""["'](?:name|tool|tool_name|function)["']\s*:""")
_ARGUMENTS_IN_TEXT = re.compile(r"""["'](?:arguments|parameters|args|input|params)["']\s*:""")
_JSON_CONSTANT = re.compile(r"\b(true|false|null)\b")
_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_CLOSER = {"{": "}", "[": "]"}


# ---------------------------------------------------------------------------------------------
# Public API


def parse_tool_calls(reply: str, tools: list[ToolSpec]) -> ParsedReply:
    """Find, repair and validate every tool call in `reply`, in order of appearance.

    Accepts `<tool_call>` tags (closed or left open), JSON in markdown fences (one object or a
    list), and bare JSON objects in prose. Blocks that are not calls stay in `text`.
    """
    known = {tool.name for tool in tools}
    calls: list[ToolCall] = []
    problems: list[ToolCallProblem] = []
    repairs: list[str] = []
    removed: list[tuple[int, int]] = []

    for block in _blocks(reply):
        found_any = False
        for piece in block.pieces:
            raw = _clip(piece.raw)
            if piece.error is not None:
                if block.kind == "fence" and not _NAME_IN_TEXT.search(piece.raw):
                    continue  # malformed JSON that never claimed to be a call is just code
                problems.append(_unreadable_problem(piece, block.kind))
                found_any = True
                continue
            raw_calls = _calls_in(piece.value, known)
            if raw_calls is None:
                if block.kind == "tag":
                    problems.append(
                        ToolCallProblem(
                            tool=None,
                            message="the <tool_call> block has no tool name; write "
                            + '{"name": "<tool>", "arguments": {...}}',
                            raw=raw,
                        )
                    )
                    found_any = True
                continue
            found_any = True
            for raw_call in raw_calls:
                arguments, problem, notes = validate_call(raw_call.name, raw_call.arguments, tools)
                if arguments is None:
                    if problem is not None:
                        problems.append(problem.model_copy(update={"raw": raw}))
                    continue
                call_id = raw_call.id or f"call_{len(calls) + 1}"
                calls.append(ToolCall(id=call_id, name=raw_call.name, arguments=arguments))
                for note in [*piece.notes, *raw_call.notes, *notes]:
                    repairs.append(f"{raw_call.name}: {note}")
        if found_any:
            removed.append((block.start, block.end))

    return ParsedReply(
        text=_remaining_text(reply, removed),
        calls=calls,
        problems=problems,
        repairs=list(dict.fromkeys(repairs)),  # a list's shared notes are recorded once
    )


def validate_call(
    name: str, arguments: object, tools: list[ToolSpec]
) -> tuple[dict | None, ToolCallProblem | None, list[str]]:
    """Check one call against its tool's schema, after safe coercions.

    Returns (arguments, None, repairs) when valid, else (None, problem, repairs). `arguments`
    may be a dict, a JSON string of one (double-encoded, as models do), or None for no arguments.
    """
    repairs: list[str] = []
    by_name = {tool.name: tool for tool in tools}
    spec = by_name.get(name)
    if spec is None:
        return (
            None,
            _problem(name, _unknown_tool_message(name, sorted(by_name)), arguments),
            repairs,
        )

    decoded, why_not = _arguments_as_dict(arguments, repairs)
    if decoded is None:
        return None, _problem(name, f"{name}: {why_not}", arguments), repairs

    schema = spec.input_schema or {"type": "object"}
    coerced = _coerce(decoded, schema, schema, "", repairs)

    validator_class = validator_for(schema, default=Draft202012Validator)
    try:
        validator_class.check_schema(schema)
        errors = list(validator_class(schema).iter_errors(coerced))
    except SchemaError as exc:
        # A broken tool schema is the server's fault, not the model's: pass the call on and let
        # the tool itself judge the arguments.
        repairs.append(f"arguments not checked: the tool's schema is invalid ({exc.message})")
        return coerced, None, repairs
    except Exception as exc:  # noqa: BLE001 - an unresolvable $ref or the like, same reasoning
        repairs.append(f"arguments not checked: the tool's schema could not be used ({exc})")
        return coerced, None, repairs

    if errors:
        return None, _problem(name, _validation_message(name, errors, schema), arguments), repairs
    return coerced, None, repairs


# ---------------------------------------------------------------------------------------------
# Finding candidate blocks in a reply


@dataclass
class _Piece:
    """One JSON value read from a block, or the reason it could not be read."""

    raw: str
    value: Any = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Block:
    """A span of the reply that may hold calls: a tag, a fence, or a bare JSON object."""

    start: int
    end: int
    kind: str  # "tag", "fence" or "bare"
    pieces: list[_Piece]


def _blocks(reply: str) -> list[_Block]:
    """Walk the reply once, left to right, so blocks come out in order of appearance."""
    blocks: list[_Block] = []
    position = 0
    while True:
        opener = _OPENER.search(reply, position)
        if opener is None:
            return blocks
        start = opener.start()
        token = opener.group(0)
        if token.startswith("<"):
            block = _tag_block(reply, start)
        elif token == "```":
            block = _fence_block(reply, start)
        else:
            found = _json_span(reply, start)
            if found is None:
                position = start + 1  # a stray brace in prose
                continue
            end, piece = found
            block = _Block(start, end, "bare", [piece])
        blocks.append(block)
        position = max(block.end, start + 1)


def _tag_block(reply: str, start: int) -> _Block:
    opener = _TAG_OPEN.match(reply, start)
    assert opener is not None
    body_start = opener.end()
    close = _TAG_CLOSE.search(reply, body_start)
    following = _TAG_OPEN.search(reply, body_start)
    # A missing closing tag ends the call at the next opening tag or at the end of the reply.
    candidates = [m.start() for m in (close, following) if m is not None]
    body_end = min(candidates, default=len(reply))
    end = close.end() if close is not None and close.start() == body_end else body_end
    body = reply[body_start:body_end]
    unwrapped = _WRAPPING_FENCE.fullmatch(body)
    if unwrapped is not None:
        body = unwrapped.group(1)  # some models fence the JSON inside the tag as well
    return _Block(start, end, "tag", _decode_body(body))


def _fence_block(reply: str, start: int) -> _Block:
    opener = _FENCE_OPEN.match(reply, start)
    assert opener is not None
    language = (opener.group(1) or "").lower()
    body_start = opener.end()
    if language not in JSON_LANGUAGES:
        # Code in another language is text, unless the whole body is in fact a JSON call.
        close = _markdown_fence_close(reply, body_start)
        piece = _decode(reply[body_start:close])
        return _Block(
            start, min(close + 3, len(reply)), "fence", [piece] if not piece.error else []
        )

    # A JSON string may itself contain ``` (a file's markdown content, even across raw
    # newlines), so the first ``` is not always the end: take the first candidate end whose
    # body reads as JSON, else the nearest one outside single-line strings.
    nearest = _find_outside_strings(reply, body_start, "```", strings_span_lines=False)
    candidates = [
        _find_outside_strings(reply, body_start, "```", strings_span_lines=True),
        nearest,
        _markdown_fence_close(reply, body_start),
    ]
    for close in dict.fromkeys(candidates):
        pieces = _decode_body(reply[body_start:close])
        if all(piece.error is None for piece in pieces):
            return _Block(start, min(close + 3, len(reply)), "fence", pieces)
    pieces = _decode_body(reply[body_start:nearest])
    return _Block(start, min(nearest + 3, len(reply)), "fence", pieces)


def _markdown_fence_close(reply: str, body_start: int) -> int:
    """Where a fence ends by markdown's rule (``` opening a line), else at the first ```."""
    at_line_start = _FENCE_CLOSE_AT_LINE_START.search(reply, body_start)
    if at_line_start is not None:
        return reply.index("```", at_line_start.start())
    anywhere = reply.find("```", body_start)
    return anywhere if anywhere >= 0 else len(reply)


def _find_outside_strings(text: str, start: int, needle: str, strings_span_lines: bool) -> int:
    """The first `needle` outside double-quoted strings, or len(text)."""
    quote: str | None = None
    index = start
    while index < len(text):
        char = text[index]
        if quote is not None:
            if char == "\\":
                index += 2
                continue
            if char == quote or (char == "\n" and not strings_span_lines):
                quote = None
        elif char == '"':
            quote = char
        elif text.startswith(needle, index):
            return index
        index += 1
    return len(text)


def _decode_body(body: str) -> list[_Piece]:
    """The JSON values in a tag's or fence's body: the whole body, else each object in it."""
    whole = _decode(body)
    if whole.error is None:
        return [whole]
    if not whole.raw:
        return [whole]
    pieces: list[_Piece] = []
    position = 0
    while True:
        opener = _OBJECT_START.search(body, position)
        if opener is None:
            break
        found = _json_span(body, opener.start())
        if found is None:
            position = opener.start() + 1
            continue
        end, piece = found
        pieces.append(piece)
        position = end
    return pieces or [whole]


def _json_span(text: str, start: int) -> tuple[int, _Piece] | None:
    """The balanced JSON-ish value opening at `start`, decoded, with its end.

    A value that will not decode is kept only when it plainly claims to be a call (a quoted
    name key and an arguments key), so stray braces in prose cost nothing. A value still open
    at the end of the text is offered to the decoder, which closes the brackets if it can.
    """
    end, state = _balanced_end(text, start)
    if state == "mismatched":
        return None
    span = text[start:end]
    # Still open at the end: only a call is worth repairing, and an open brace that swallowed a
    # fence or a tag is prose. Checked before decoding, since many stray braces in a long reply
    # would otherwise each cost a decode of the whole rest.
    if state == "open" and ("```" in span or _TAG_OPEN.search(span) or not _NAME_KEY.search(span)):
        return None
    piece = _decode(span)
    if piece.error is None:
        return end, piece
    if "```" in piece.raw or _TAG_OPEN.search(piece.raw):
        return None  # an unbalanced brace swallowed other blocks: it is prose, not a call
    if _NAME_IN_TEXT.search(piece.raw) and _ARGUMENTS_IN_TEXT.search(piece.raw):
        return end, piece
    return None


def _balanced_end(text: str, start: int) -> tuple[int, str]:
    """Where the bracket at `start` closes: (index past its match, "closed"), or
    (len(text), "open") when the text runs out first, or (index, "mismatched")."""
    stack: list[str] = []
    quote: str | None = None
    index = start
    while index < len(text):
        char = text[index]
        if quote is not None:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "{[":
            stack.append(char)
        elif char in "}]":
            if not stack or _CLOSER[stack[-1]] != char:
                return index, "mismatched"
            stack.pop()
            if not stack:
                return index + 1, "closed"
        index += 1
    return len(text), "open"


# ---------------------------------------------------------------------------------------------
# Lenient JSON


def _decode(text: str) -> _Piece:
    raw = text.strip()
    if not raw:
        return _Piece(raw=raw, error="empty tool call")
    try:
        value, notes = _loads_lenient(raw)
    except ValueError as exc:
        return _Piece(raw=raw, error=str(exc))
    return _Piece(raw=raw, value=value, notes=notes)


def _loads_lenient(text: str) -> tuple[Any, list[str]]:
    """json.loads, then the safe repairs in turn; raises ValueError naming the JSON error."""
    try:
        return _loads_json(text)
    except json.JSONDecodeError as exc:
        first_error = exc

    notes: list[str] = []
    repaired = text
    closed = _close_brackets(repaired)
    if closed != repaired:
        notes.append(f"closed unbalanced bracket(s) at the end with '{closed[len(repaired) :]}'")
        repaired = closed
    without_commas = _drop_trailing_commas(repaired)
    if without_commas != repaired:
        notes.append("removed trailing comma(s)")
        repaired = without_commas
    if notes:
        try:
            value, more_notes = _loads_json(repaired)
            return value, notes + more_notes
        except json.JSONDecodeError:
            pass

    value = _python_literal(repaired)
    if value is not None:
        return value, [*notes, "read a Python-style literal (single quotes, True/None) as JSON"]
    raise ValueError(str(first_error))


def _loads_json(text: str) -> tuple[Any, list[str]]:
    """json.loads; failing that, the same with raw control characters allowed in strings.

    Models writing a file's content into an argument often put real newlines and tabs inside
    the JSON string; `strict=False` accepts exactly that and nothing else.
    """
    try:
        return json.loads(text), []
    except json.JSONDecodeError:
        value = json.loads(text, strict=False)  # raises the same error when that was not it
    return value, ["accepted raw newlines/tabs inside JSON strings"]


def _close_brackets(text: str) -> str:
    """Append the closers of brackets left open at the end; unchanged if that is unsafe.

    Closing a string cut off mid-way would invent its end (a truncated path or file content),
    so text that ends inside a string is left alone.
    """
    stack: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote is not None:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "{[":
            stack.append(char)
        elif char in "}]":
            if not stack or _CLOSER[stack[-1]] != char:
                return text
            stack.pop()
        index += 1
    if quote is not None or not stack:
        return text
    return text + "".join(_CLOSER[bracket] for bracket in reversed(stack))


def _drop_trailing_commas(text: str) -> str:
    out: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote is not None:
            out.append(char)
            if char == "\\" and index + 1 < len(text):
                out.append(text[index + 1])
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            out.append(char)
        elif char == ",":
            following = text[index + 1 :].lstrip()
            if not following.startswith(("}", "]")):
                out.append(char)
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _python_literal(text: str) -> dict | list | None:
    """Read a Python dict/list literal (what models write after seeing Python), JSON-normalised."""
    # Map JSON's constants to Python's outside strings, so mixed input still evaluates.
    parts: list[str] = []
    outside_start = 0
    string_start = 0
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote is not None:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
                outside_start = index + 1
                parts.append(text[string_start : index + 1])
        elif char in "\"'":
            parts.append(_JSON_CONSTANT.sub(_python_constant, text[outside_start:index]))
            quote = char
            string_start = index
        index += 1
    if quote is not None:
        return None
    parts.append(_JSON_CONSTANT.sub(_python_constant, text[outside_start:]))
    try:
        value = ast.literal_eval("".join(parts))
        # Round-trip so tuples become lists and anything not JSON (sets, bytes) is refused.
        normalised = json.loads(json.dumps(value))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return normalised if isinstance(normalised, (dict, list)) else None


def _python_constant(match: re.Match[str]) -> str:
    return {"true": "True", "false": "False", "null": "None"}[match.group(1)]


# ---------------------------------------------------------------------------------------------
# Call shapes


@dataclass
class _RawCall:
    name: str
    arguments: Any
    id: str | None
    notes: list[str] = field(default_factory=list)


def _calls_in(value: Any, known: set[str]) -> list[_RawCall] | None:
    """The calls a decoded value holds, or None when it does not look like a call at all."""
    if isinstance(value, list):
        calls: list[_RawCall] = []
        for item in value:
            calls.extend(_calls_in(item, known) or [])
        return calls or None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("tool_calls"), list):  # an OpenAI assistant message, echoed
        return _calls_in(value["tool_calls"], known)
    call = _call_from_object(value, known)
    return [call] if call is not None else None


def _call_from_object(value: dict, known: set[str]) -> _RawCall | None:
    call_id = value.get("id") if isinstance(value.get("id"), str) and value.get("id") else None

    function = value.get("function")
    if isinstance(function, dict):  # OpenAI: {"type": "function", "function": {...}}
        if not isinstance(function.get("name"), str):
            return None
        arguments = next((function[key] for key in ARGUMENT_KEYS if key in function), {})
        return _RawCall(function["name"], arguments, call_id)

    if value.get("type") == "tool_use" and isinstance(value.get("name"), str):  # Anthropic
        return _RawCall(value["name"], value.get("input", {}), call_id)

    name_key = next((key for key in NAME_KEYS if isinstance(value.get(key), str)), None)
    if name_key is None or _is_tool_definition(value):
        return None
    name = value[name_key]
    arguments_key = next((key for key in ARGUMENT_KEYS if key in value), None)
    if arguments_key is not None:
        return _RawCall(name, value[arguments_key], call_id)

    rest = {key: item for key, item in value.items() if key not in (name_key, "id", "type")}
    if not rest:
        return _RawCall(name, {}, call_id)
    if name in known:
        # Models sometimes flatten the arguments beside the name; only trust that for a real tool,
        # or every {"name": ..., "version": ...} in a reply would become a call.
        note = f"read arguments {', '.join(sorted(rest))} given beside the tool name"
        return _RawCall(name, rest, call_id, [note])
    return None


def _is_tool_definition(value: dict) -> bool:
    """A tool's definition echoed back (name, description, schema) is not a call of it."""
    if "inputSchema" in value or "input_schema" in value:
        return True
    parameters = value.get("parameters")
    return "description" in value and isinstance(parameters, dict) and "properties" in parameters


# ---------------------------------------------------------------------------------------------
# Arguments: decoding, coercion


def _arguments_as_dict(arguments: object, repairs: list[str]) -> tuple[dict | None, str]:
    if arguments is None:
        return {}, ""
    for _ in range(2):  # at most double-double-encoded
        if not isinstance(arguments, str):
            break
        if not arguments.strip():
            return {}, ""
        try:
            arguments, notes = _loads_lenient(arguments.strip())
        except ValueError as exc:
            return None, f"'arguments' is a string that is not valid JSON ({exc}); send an object"
        repairs.append("decoded 'arguments' from a JSON string")
        repairs.extend(notes)
    if not isinstance(arguments, dict):
        return None, f"'arguments' must be a JSON object, got {_kind(arguments)}"
    return dict(arguments), ""


def _coerce(value: Any, schema: Any, root: dict, where: str, repairs: list[str]) -> Any:
    """Bring `value` closer to `schema` where the intent is unambiguous; note every change."""
    schema = _resolve(schema, root)
    if not schema:
        return value
    kinds = _types(schema, root)

    if isinstance(value, dict):
        object_schema = _branch(schema, root, "object")
        if object_schema:
            return _coerce_object(value, object_schema, root, where, repairs)
        if "array" in kinds:
            repairs.append(f"wrapped '{where}' in a list")
            return _coerce([value], schema, root, where, repairs)
        return value

    if isinstance(value, list):
        items = _branch(schema, root, "array").get("items")
        if isinstance(items, dict):
            return [
                _coerce(item, items, root, f"{where}[{index}]", repairs)
                for index, item in enumerate(value)
            ]
        return value

    if not kinds or any(_is_kind(value, kind) for kind in kinds):
        return value

    if isinstance(value, str) and ({"array", "object"} & kinds):
        text = value.strip()
        if text.startswith(("[", "{")):
            try:
                decoded, _ = _loads_lenient(text)
            except ValueError:
                decoded = None
            if isinstance(decoded, (list, dict)):
                repairs.append(f"decoded '{where}' from a JSON string")
                return _coerce(decoded, schema, root, where, repairs)

    coerced = _coerce_scalar(value, kinds)
    if coerced is not _UNCHANGED:
        repairs.append(f"coerced '{where}' from {value!r} to {coerced!r}")
        return coerced

    if "array" in kinds:
        repairs.append(f"wrapped '{where}' in a list")
        return _coerce([value], schema, root, where, repairs)
    return value


_UNCHANGED = object()


def _coerce_scalar(value: Any, kinds: set[str]) -> Any:
    """The one obvious conversion of a scalar to a wanted scalar type, or _UNCHANGED."""
    if isinstance(value, str):
        text = value.strip()
        if "integer" in kinds and _INTEGER_TEXT.fullmatch(text):
            return int(text)
        if "number" in kinds and _NUMBER_TEXT.fullmatch(text):
            number = float(text)
            return int(text) if _INTEGER_TEXT.fullmatch(text) else number
        if "boolean" in kinds and text.lower() in ("true", "false"):
            return text.lower() == "true"
        return _UNCHANGED
    if isinstance(value, bool):
        return _UNCHANGED  # True as 1 or "True" would be a guess
    if isinstance(value, float) and "integer" in kinds and value.is_integer():
        return int(value)
    if isinstance(value, (int, float)) and "string" in kinds:
        return str(value)
    return _UNCHANGED


def _coerce_object(value: dict, schema: dict, root: dict, where: str, repairs: list[str]) -> dict:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return dict(value)  # no declared properties: the tool takes what it is given
    required = set(schema.get("required") or [])
    additional = schema.get("additionalProperties", True)
    patterns = schema.get("patternProperties") or {}

    result: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if key in properties:
            if item is None and key not in required and not _allows_null(properties[key], root):
                repairs.append(f"dropped null for optional argument '{path}'")
                continue
            result[key] = _coerce(item, properties[key], root, path, repairs)
        elif _matches_pattern(key, patterns):
            result[key] = item
        elif additional is True:
            # Models invent arguments; unless the schema forbids them, they are noise to drop.
            repairs.append(f"dropped unknown argument '{path}'")
        elif isinstance(additional, dict):
            result[key] = _coerce(item, additional, root, path, repairs)
        else:
            result[key] = item  # additionalProperties: false; validation names the culprit
    return result


def _matches_pattern(key: str, patterns: Any) -> bool:
    if not isinstance(patterns, dict):
        return False
    for pattern in patterns:
        try:
            if re.search(pattern, key):
                return True
        except re.error:
            continue
    return False


def _resolve(schema: Any, root: dict) -> dict:
    """Follow local `$ref`s ("#/$defs/Edit"), as pydantic-generated MCP schemas use them."""
    for _ in range(20):  # bounded: refs can be circular
        if not isinstance(schema, dict):
            return {}
        reference = schema.get("$ref")
        if not isinstance(reference, str) or not reference.startswith("#"):
            return schema
        target: Any = root
        for part in reference[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return {}
            target = target[part]
        schema = target
    return {}


def _types(schema: Any, root: dict, depth: int = 0) -> set[str]:
    """Every JSON type a schema admits, looking through anyOf/oneOf (e.g. `int | None`)."""
    schema = _resolve(schema, root)
    kinds: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        kinds.add(declared)
    elif isinstance(declared, list):
        kinds.update(kind for kind in declared if isinstance(kind, str))
    if depth < 5:
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list):
                for branch in branches:
                    kinds |= _types(branch, root, depth + 1)
    return kinds


def _branch(schema: dict, root: dict, kind: str) -> dict:
    """The part of a schema that describes `kind` ("object" or "array"), or {}."""
    marker = "properties" if kind == "object" else "items"
    declared = schema.get("type")
    if marker in schema or declared == kind or (isinstance(declared, list) and kind in declared):
        return schema
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for branch in branches:
                resolved = _resolve(branch, root)
                if kind in _types(resolved, root) or marker in resolved:
                    return resolved
    return {}


def _allows_null(schema: Any, root: dict) -> bool:
    schema = _resolve(schema, root)
    if isinstance(schema.get("enum"), list):
        return None in schema["enum"]
    kinds = _types(schema, root)
    return "null" in kinds if kinds else True


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = {"string": str, "boolean": bool, "array": list, "object": dict}.get(kind)
    if expected is not None:
        return isinstance(value, expected)
    return kind == "null" and value is None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind in ("boolean", "integer", "number", "string", "array", "object"):
        if _is_kind(value, kind):
            return kind
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Messages for the model


def _problem(name: str | None, message: str, arguments: object) -> ToolCallProblem:
    raw = json.dumps({"name": name, "arguments": arguments}, default=str)
    return ToolCallProblem(tool=name, message=message, raw=_clip(raw))


def _unreadable_problem(piece: _Piece, kind: str) -> ToolCallProblem:
    named = _NAME_IN_TEXT.search(piece.raw)
    tool = named.group(1) if named else None
    prefix = f"{tool}: " if tool else ""
    if piece.error == "empty tool call":
        what = "the <tool_call> block is empty"
    else:
        what = f"the tool call is not valid JSON ({piece.error})"
    hint = (
        '{"name": "<tool>", "arguments": {...}}'
        if tool is None
        else ('{"name": "' + tool + '", "arguments": {...}}')
    )
    return ToolCallProblem(
        tool=tool, message=f"{prefix}{what}; write one JSON object: {hint}", raw=_clip(piece.raw)
    )


def _unknown_tool_message(name: str, names: list[str]) -> str:
    if not names:
        return f"unknown tool '{name}'; no tools are available, answer in plain text"
    message = f"unknown tool '{name}'; available tools: {', '.join(names)}"
    # Suggest only near-certain intents (a typo, a missing server prefix); a loose match such as
    # edit_file -> read_file would steer the model wrong.
    suffixed = [real for real in names if real.endswith(name) or name.endswith(real)]
    close = suffixed or difflib.get_close_matches(name, names, n=1, cutoff=0.85)
    if close:
        message += f" (did you mean '{close[0]}'?)"
    return message


def _validation_message(name: str, errors: list[ValidationError], schema: dict) -> str:
    # Missing arguments first: they are what a small model most often needs to hear.
    ordered = sorted(errors, key=lambda e: (e.validator != "required", [str(p) for p in e.path]))
    parts = list(dict.fromkeys(_error_text(error, schema) for error in ordered))
    # Up to three faults, so one re-ask can fix them together, on one line a small model reads.
    summary = _clip("; ".join(parts[:3]), 240)
    return f"{name}: {summary}\nexpected arguments: {_signature(schema)}"


def _error_text(error: ValidationError, root: dict) -> str:
    where = _path_text(error.absolute_path)
    subject = f"argument '{where}'" if where else "arguments"
    prefix = f"{where}." if where else ""
    validator = error.validator
    instance = error.instance
    if validator == "required" and isinstance(instance, dict):
        missing = [p for p in error.validator_value if p not in instance]
        return "; ".join(f"argument '{prefix}{p}' is required" for p in missing)
    if validator == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = list((schema.get("properties") or {}).keys())
        patterns = schema.get("patternProperties") or {}
        extra = [k for k in instance if k not in allowed and not _matches_pattern(k, patterns)]
        names = ", ".join(f"'{prefix}{k}'" for k in extra)
        return f"unknown argument {names}; allowed: {', '.join(allowed) or 'none'}"
    if validator in ("type", "anyOf", "oneOf"):
        return f"{subject} must be {_type_text(error.schema, root)}, got {_value_text(instance)}"
    if validator == "enum":
        choices = ", ".join(json.dumps(choice) for choice in error.validator_value)
        return f"{subject} must be one of {choices}; got {_value_text(instance)}"
    return f"{subject}: {_clip(error.message, 120)}"


def _type_text(schema: Any, root: dict) -> str:
    resolved = _resolve(schema, root)
    if isinstance(resolved.get("enum"), list):
        return "one of " + ", ".join(json.dumps(choice) for choice in resolved["enum"])
    kinds = _types(resolved, root)
    if not kinds:
        return "a valid value"
    texts = []
    for kind in sorted(kinds, key=lambda k: (k == "null", k)):
        items = _resolve(_branch(resolved, root, "array").get("items"), root)
        item_kinds = _types(items, root) if kind == "array" else set()
        texts.append(f"array of {' or '.join(sorted(item_kinds))}" if item_kinds else kind)
    return " or ".join(texts)


def _signature(schema: dict) -> str:
    """The arguments a tool takes, short: {"path": string, "start_line"?: integer}."""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        return "{}"
    required = set(schema.get("required") or [])
    fields = [
        f'"{key}"{"" if key in required else "?"}: {_type_text(sub, schema)}'
        for key, sub in properties.items()
    ]
    return _clip("{" + ", ".join(fields) + "}", 240)


def _value_text(value: Any) -> str:
    return f"{_kind(value)} {_clip(json.dumps(value, default=str), 60)}"


def _path_text(path: Any) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _clip(text: str, limit: int = RAW_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _remaining_text(reply: str, removed: list[tuple[int, int]]) -> str:
    kept: list[str] = []
    position = 0
    for start, end in removed:
        kept.append(reply[position:start])
        position = end
    kept.append(reply[position:])
    text = "".join(kept)
    text = _TAG_CLOSE.sub("", text)  # a closing tag left behind by a call read as bare JSON
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)  # the gap a removed block leaves
    return text.strip()
