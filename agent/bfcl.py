"""The Berkeley Function Calling Leaderboard's single-turn data, and its AST match, for Python.

Provides `load_cases` (the questions, functions and possible answers that the `bfcl-eval` package
on PyPI ships as JSON lines), `tool_spec` (a BFCL function as an MCP-style tool with a real JSON
Schema: BFCL writes `dict`, `float`, `tuple` and `any` where JSON Schema has `object`,
`number`, `array` and no type), and `ast_match`, a port of BFCL's own Python AST checker
(`bfcl_eval/eval_checker/ast_eval/ast_checker.py`, `simple_function_checker` and
`multiple_function_checker`) so results are comparable with the leaderboard's. The checker is
ported rather than imported because importing it pulls in every provider SDK BFCL supports.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from turnout.runtimes.base import ToolSpec
from turnout.runtimes.errors import UsageError

CATEGORIES = ("simple_python", "multiple", "irrelevance")
# Categories whose questions no offered function can answer: the right reply makes no call.
DECLINE = frozenset({"irrelevance"})
DEFAULT_CATEGORIES = ("simple_python", "multiple")
DATA_VERSION = "BFCL_v4"

_TYPE_TO_JSON_SCHEMA = {
    "dict": "object", "float": "number", "tuple": "array", "integer": "integer",
    "string": "string", "boolean": "boolean", "array": "array", "object": "object",
    "number": "number", "null": "null",
}
_PYTHON_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool, "array": list,
    "tuple": list, "dict": dict, "any": str,
}
_NESTED_TYPES = ("array", "tuple")


class BfclCase(BaseModel):
    """One single-turn BFCL question with the functions offered and the answers accepted."""

    id: str
    category: str
    messages: list[dict[str, str]]
    functions: list[dict[str, Any]]
    answers: list[dict[str, dict[str, list[Any]]]]


def data_dir() -> Path:
    """Where the installed `bfcl-eval` package keeps its data, found without importing it."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "the BFCL data is not installed; run `.venv/bin/pip install --no-deps bfcl-eval` "
            "(its data is all turnout needs, so skip its many dependencies)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_cases(category: str, limit: int | None = None, skip: int = 0) -> list[BfclCase]:
    """The category's cases in BFCL's order: `skip` left out from the start, then at most `limit`."""
    if category not in CATEGORIES:
        raise UsageError(
            f"unknown BFCL category {category!r}; supported: {', '.join(CATEGORIES)}"
        )
    if skip < 0 or (limit is not None and limit < 0):
        raise UsageError(f"--skip and --limit count cases: give 0 or more, not {min(skip, limit or 0)}")
    root = data_dir()
    questions = _read_jsonl(root / f"{DATA_VERSION}_{category}.json")
    if category in DECLINE:  # no possible answers: every call is wrong
        answers: dict[str, Any] = {row["id"]: [] for row in questions}
    else:
        answers = {row["id"]: row["ground_truth"] for row in _read_jsonl(
            root / "possible_answer" / f"{DATA_VERSION}_{category}.json"
        )}
    cases = [
        BfclCase(
            id=row["id"],
            category=category,
            messages=row["question"][0],
            functions=row["function"],
            answers=answers[row["id"]],
        )
        for row in questions
        if row["id"] in answers
    ]
    cases = cases[skip:]
    return cases[:limit] if limit is not None else cases


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UsageError(f"BFCL data file {path} is missing; reinstall bfcl-eval")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def tool_spec(function: dict[str, Any]) -> ToolSpec:
    return ToolSpec(
        name=function["name"],
        description=function.get("description", ""),
        input_schema=json_schema(function.get("parameters") or {"type": "dict"}),
    )


def openai_tool(function: dict[str, Any]) -> dict[str, Any]:
    """The function as an OpenAI `tools=` entry, the form llama-cpp-python takes."""
    spec = tool_spec(function)
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.input_schema},
    }


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A BFCL parameter schema as JSON Schema, walked structurally (a property may be named
    "type", so keys are only renamed where they are keywords)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            if value in _TYPE_TO_JSON_SCHEMA:
                out["type"] = _TYPE_TO_JSON_SCHEMA[value]
            # "any" and unknown names: no type constraint
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = json_schema(value)
        elif key in ("enum", "required", "description", "default", "minimum", "maximum"):
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# BFCL's AST checker, Python only (names and rules as in ast_checker.py)


def ast_match(
    functions: list[dict[str, Any]],
    calls: list[tuple[str, dict[str, Any]]],
    answers: list[dict[str, dict[str, list[Any]]]],
    category: str,
) -> tuple[bool, str]:
    """Whether the model's calls match one of the possible answers; else why not. In a
    category of questions no function answers (`DECLINE`), only a reply without a call does."""
    if category in DECLINE:
        return (False, f"called {calls[0][0]}") if calls else (True, "answered without a call")
    if len(calls) != len(answers):
        return False, "wrong number of functions"
    expected_name = next(iter(answers[0]))
    if category == "multiple":
        description = next((f for f in functions if f["name"] == expected_name), None)
        if description is None:
            return False, f"no description for {expected_name}"
    else:
        description = functions[0]
    name, arguments = calls[0]
    return _simple_function_checker(description, {name: arguments}, answers[0])


def _simple_function_checker(
    description: dict[str, Any], output: dict[str, dict[str, Any]], answer: dict[str, Any]
) -> tuple[bool, str]:
    possible = next(iter(answer.values()))
    name = description["name"]
    details = description["parameters"]["properties"]
    required = description["parameters"].get("required", [])
    if name not in output:
        return False, f"function name {name!r} not found in the output"
    params = output[name]
    for param in required:
        if param not in params:
            return False, f"missing required parameter {param!r}"
    for param, value in params.items():
        if param not in details or param not in possible:
            return False, f"unexpected parameter {param!r}"
        type_name = details[param].get("type", "any")
        expected = _PYTHON_TYPES.get(type_name, str)
        nested = None
        if type_name in _NESTED_TYPES:
            nested = _PYTHON_TYPES.get((details[param].get("items") or {}).get("type", "any"), str)
        if type_name == "float" and type(value) is int:
            value = float(value)  # BFCL allows Python's int-to-float conversion
        ok, is_variable, why = _type_checker(param, value, possible[param], type_name, expected, nested)
        if not ok:
            return False, why
        if not is_variable:
            if expected is dict:
                ok, why = _dict_checker(param, value, possible[param])
            elif expected is list and nested is dict:
                ok, why = _list_dict_checker(param, value, possible[param])
            elif expected is str:
                ok, why = _string_checker(param, value, possible[param])
            elif expected is list:
                ok, why = _list_checker(param, value, possible[param])
            else:
                ok = value in possible[param]
                why = f"invalid value for {param!r}: {value!r}"
            if not ok:
                return False, why
            continue
        if value not in possible[param]:
            return False, f"invalid value for {param!r}: {value!r}"
    for param in possible:
        if param not in params and "" not in possible[param]:
            return False, f"optional parameter {param!r} not provided and not marked optional"
    return True, ""


def _answer_type(possible: list[Any]) -> type | None:
    for answer in possible:
        if answer != "":
            return type(answer)
    return None


def _type_checker(
    param: str, value: Any, possible: list[Any], type_name: str, expected: type, nested: type | None
) -> tuple[bool, bool, str]:
    """(valid, is_variable, why)."""
    answer_type = _answer_type(possible)
    is_variable = answer_type is not None and answer_type != expected
    if type(value) is expected:
        if nested is None:
            return True, is_variable, ""
        for item in possible:
            if type(item) is list and not all(
                _type_checker(param, v, item, str(nested), nested, None)[0] for v in value
            ):
                continue
            return True, is_variable, ""
        return False, False, f"nested type check failed for {param!r}"
    if answer_type is not None and type(value) is answer_type:
        return True, True, ""
    return False, False, f"wrong type for {param!r}: expected {type_name}, got {type(value).__name__}"


def _standardize(text: str) -> str:
    return re.sub(r"[ \,\.\/\-\_\*\^]", "", text).lower().replace("'", '"')


def _string_checker(param: str, value: str, possible: list[Any]) -> tuple[bool, str]:
    accepted = [_standardize(p) for p in possible if type(p) is str]
    if _standardize(value) not in accepted:
        return False, f"invalid value for {param!r}: {value!r}"
    return True, ""


def _list_checker(param: str, value: list[Any], possible: list[Any]) -> tuple[bool, str]:
    given = [_standardize(v) if type(v) is str else v for v in value]
    accepted = [
        [_standardize(v) if type(v) is str else v for v in option]
        for option in possible
        if isinstance(option, list)
    ]
    if given not in accepted:
        return False, f"invalid value for {param!r}: {value!r}"
    return True, ""


def _dict_checker(param: str, value: dict[str, Any], possible: list[Any]) -> tuple[bool, str]:
    why = f"invalid dict for {param!r}"
    for option in possible:
        if option == "" or not isinstance(option, dict):
            continue
        ok = True
        for key, item in value.items():
            if key not in option:
                ok, why = False, f"unexpected dict key {key!r}"
                break
            given = _standardize(item) if type(item) is str else item
            accepted = [_standardize(v) if type(v) is str else v for v in option[key]]
            if given not in accepted:
                ok, why = False, f"invalid value for {key!r}: {item!r}"
                break
        if ok:
            for key, accepted_values in option.items():
                if key not in value and "" not in accepted_values:
                    ok, why = False, f"missing dict key {key!r}"
                    break
        if ok:
            return True, ""
    return False, why


def _list_dict_checker(param: str, value: list[Any], possible: list[Any]) -> tuple[bool, str]:
    why = f"invalid list of dicts for {param!r}"
    for option in possible:
        if not isinstance(option, list) or len(option) != len(value):
            why = "wrong number of dictionaries in the list"
            continue
        results = [
            _dict_checker(param, item, [expected])
            for item, expected in zip(value, option, strict=True)
        ]
        if all(ok for ok, _ in results):
            return True, ""
        why = next(reason for ok, reason in results if not ok)
    return False, why
