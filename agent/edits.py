"""Edits as a small model writes them: whole files in fenced blocks, or SEARCH/REPLACE blocks.

Code inside a JSON tool call costs a small model quality (escaping, dropped lines), so the
repair loop asks for plain markdown and reads the edits out of it here:

    src/textutil.py
    ```python
    ...the whole corrected file...
    ```

or, for a file too large to rewrite,

    src/big.py
    <<<<<<< SEARCH
    ...lines copied from the file...
    =======
    ...the lines that replace them...
    >>>>>>> REPLACE

The path may sit on the line before the fence (bare, in backticks, bold, after `File:` or a
markdown heading) or in the fence's info string. A block with no path is given to the shown
file it resembles most, so a model that forgets the path still lands its edit.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel

EditKind = Literal["whole", "replace"]


class Edit(BaseModel):
    """One change to one file, as the model proposed it."""

    path: str
    kind: EditKind
    content: str = ""  # kind "whole": the new file
    search: str = ""  # kind "replace": text copied from the file...
    replace: str = ""  # ...and what replaces it


class ParsedReply(BaseModel):
    edits: list[Edit]
    prose: str  # the reply without its blocks: the model's explanation or summary
    problems: list[str]  # blocks that could not be read, said so the model can do better


SOURCE_SUFFIXES = frozenset(
    ["py", "pyi", "txt", "md", "rst", "toml", "cfg", "ini", "json", "yaml", "yml", "js", "ts", "tsx", "jsx", "rs", "go", "c", "h", "cc", "cpp", "hpp", "java", "kt", "rb", "sh", "html", "css", "sql"]
)
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$", re.MULTILINE)
_PATHISH = re.compile(r"[\w.\-/\\]+\.[A-Za-z0-9]{1,8}")
_SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")


def parse_reply(text: str, known: Mapping[str, str]) -> ParsedReply:
    """Read the edits out of a reply. `known` maps each file shown to the model to its text
    (used to place blocks that name no path, and to tell a path comment from code)."""
    lines = text.split("\n")
    edits: list[Edit] = []
    problems: list[str] = []
    prose: list[str] = []
    index = 0
    pending_path: str | None = None
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if _SEARCH.match(line):
            index, found = _read_search_replace(lines, index, pending_path, known, problems)
            edits.extend(found)
            continue
        if fence is None:
            path = path_in_line(line, known)
            if path is not None:
                pending_path = path
            elif line.strip():
                prose.append(line)
            index += 1
            continue
        end = _closing_fence(lines, index + 1, fence.group("fence"))
        body = lines[index + 1 : end]
        index = end + 1
        info_path = path_in_line(fence.group("info"), known)
        path = info_path or pending_path
        if any(_SEARCH.match(b) for b in body):
            _, found = _read_search_replace(body, 0, path, known, problems, inside_fence=True)
            edits.extend(found)
        else:
            # A fence around the path line alone, then the code's own fence opened inside it:
            # ```python / src/x.py / ```python / code / ```.
            while len(body) >= 2 and _FENCE.match(body[1]) and path_in_line(body[0], known):
                path, body = path_in_line(body[0], known), body[2:]
            content = "\n".join(body)
            path, content = _path_from_first_line(path, content, known)
            path = path or closest_file(content, known)
            if path is None:
                if body:
                    prose.append("(a code block that names no file)")
            else:
                content = _with_final_newline(content)
                if path.endswith(".py") and path in known:
                    content = fill_in_omissions(known[path], content)
                edits.append(Edit(path=path, kind="whole", content=content))
        pending_path = None
    return ParsedReply(edits=edits, prose="\n".join(prose).strip(), problems=problems)


def render_edits(edits: list[Edit]) -> str:
    """Edits written back in the form they are read in (for showing a try to the model again)."""
    parts = []
    for edit in edits:
        if edit.kind == "whole":
            parts.append(f"{edit.path}\n```\n{edit.content.rstrip()}\n```")
        else:
            parts.append(f"{edit.path}\n<<<<<<< SEARCH\n{edit.search}\n=======\n"
                         f"{edit.replace}\n>>>>>>> REPLACE")
    return "\n\n".join(parts)


def path_in_line(line: str, known: Mapping[str, str]) -> str | None:
    """A file path that a line consists of, decorations aside (`x.py`, **x.py**, File: x.py,
    ### x.py, # x.py); None for ordinary prose or code."""
    stripped = line.strip().strip("*`#:").strip()
    stripped = re.sub(r"^(?:file|path|filename)\s*[:=]\s*", "", stripped, flags=re.IGNORECASE)
    stripped = stripped.strip("*`'\" ").rstrip(":")
    if not stripped or " " in stripped or len(stripped) > 200:
        # "python src/x.py" as a fence's info string: the last word may be the path.
        words = stripped.split()
        if len(words) == 2 and _PATHISH.fullmatch(words[1]):
            stripped = words[1]
        else:
            return None
    if not _PATHISH.fullmatch(stripped):
        return None
    path = stripped.replace("\\", "/").removeprefix("./")
    if path.startswith("/") or ".." in path.split("/"):
        return None
    if path in known:
        return path
    # A model that names `textutil.py` for `src/textutil.py`: the only shown file of that name.
    by_name = [k for k in known if k.rsplit("/", 1)[-1] == path.rsplit("/", 1)[-1]]
    if len(by_name) == 1 and "/" not in path:
        return by_name[0]
    # A file not shown yet (the model may create one): only names that look like source files.
    return path if path.rsplit(".", 1)[-1].lower() in SOURCE_SUFFIXES else None


def closest_file(content: str, known: Mapping[str, str]) -> str | None:
    """The shown file a path-less block most resembles (it is a rewrite of that file)."""
    if not known:
        return None
    if len(known) == 1:
        return next(iter(known))
    scored = sorted(
        ((difflib.SequenceMatcher(None, content, text, autojunk=False).quick_ratio(), path)
         for path, text in known.items()),
        reverse=True,
    )
    return scored[0][1] if scored[0][0] >= 0.5 else None


def _closing_fence(lines: list[str], start: int, fence: str) -> int:
    for index in range(start, len(lines)):
        stripped = lines[index].strip()
        if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            return index
    return len(lines)  # an unclosed fence (the reply was cut off) runs to the end


def _path_from_first_line(
    path: str | None, content: str, known: Mapping[str, str]
) -> tuple[str | None, str]:
    """A first line `# src/x.py` names the file; drop it unless the file really starts so."""
    first, _, rest = content.partition("\n")
    named = path_in_line(first, known) if first.lstrip().startswith(("#", "//")) else None
    if named is None:
        return path, content
    original = known.get(named, "")
    if original.startswith(first):
        return path or named, content
    return path or named, rest


def _read_search_replace(
    lines: list[str], start: int, path: str | None, known: Mapping[str, str],
    problems: list[str], *, inside_fence: bool = False,
) -> tuple[int, list[Edit]]:
    """Read consecutive SEARCH/REPLACE blocks from `start`; return the index after them."""
    edits: list[Edit] = []
    index = start
    while index < len(lines):
        line = lines[index]
        if not _SEARCH.match(line):
            named = path_in_line(line, known)
            if named is not None:
                path = named
                index += 1
                continue
            if inside_fence or not line.strip():
                index += 1
                continue
            break
        divider = next((i for i in range(index + 1, len(lines)) if _DIVIDER.match(lines[i])), None)
        end = None
        if divider is not None:
            end = next((i for i in range(divider + 1, len(lines)) if _REPLACE.match(lines[i])), None)
        if divider is None or end is None:
            problems.append("a SEARCH block without its ======= and >>>>>>> REPLACE lines")
            return len(lines), edits
        search = "\n".join(lines[index + 1 : divider])
        replace = "\n".join(lines[divider + 1 : end])
        target = path or closest_file(search, known)
        if target is None:
            problems.append("a SEARCH/REPLACE block that names no file: put its path on the line above")
        else:
            edits.append(Edit(path=target, kind="replace", search=search, replace=replace))
        index = end + 1
    return index, edits


def _with_final_newline(text: str) -> str:
    return text if text.endswith("\n") or not text else text + "\n"


def fill_in_omissions(original: str, new: str) -> str:
    """A "whole file" that leaves out definitions the file has is, from a small model, nearly
    always the changed definitions alone ("here is the corrected function"), not a request to
    delete the rest. Splice what it wrote into the original, definition by definition: each
    top-level function or class it wrote replaces the one of the same name, new ones go where
    the model put them relative to the rest (at the end), new imports go after the original's.
    A reply that keeps every definition, or either side that does not parse, is taken as is."""
    try:
        old_tree, new_tree = ast.parse(original), ast.parse(new)
    except SyntaxError:
        return new
    old_defs = {n.name: n for n in old_tree.body if isinstance(n, _DEFS)}
    new_defs = {n.name: n for n in new_tree.body if isinstance(n, _DEFS)}
    if not new_defs or set(old_defs) <= set(new_defs):
        return new
    old_lines, new_lines = original.splitlines(keepends=True), new.splitlines(keepends=True)
    merged: list[str] = []
    cursor = 0
    for name, node in old_defs.items():
        start, end = _span(node)
        merged += old_lines[cursor:start]
        if name in new_defs:
            s, e = _span(new_defs[name])
            merged += _ensure_newline(new_lines[s:e])
        else:
            merged += old_lines[start:end]
        cursor = end
    merged += old_lines[cursor:]
    added = [n for name, n in new_defs.items() if name not in old_defs]
    for node in added:
        s, e = _span(node)
        merged += ["\n", "\n"] + _ensure_newline(new_lines[s:e])
    text = "".join(merged)
    imports = _new_imports(old_tree, new_tree, new_lines)
    if imports:
        at = _after_imports(old_tree)
        lines = text.splitlines(keepends=True)
        text = "".join(lines[:at] + imports + lines[at:])
    return text


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _span(node: ast.stmt) -> tuple[int, int]:
    """0-based line range of a definition, its decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first - 1, node.end_lineno or node.lineno


def _ensure_newline(lines: list[str]) -> list[str]:
    if lines and not lines[-1].endswith("\n"):
        return lines[:-1] + [lines[-1] + "\n"]
    return lines


def _new_imports(old_tree: ast.Module, new_tree: ast.Module, new_lines: list[str]) -> list[str]:
    seen = {ast.dump(n) for n in old_tree.body if isinstance(n, ast.Import | ast.ImportFrom)}
    out: list[str] = []
    for node in new_tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom) and ast.dump(node) not in seen:
            out += _ensure_newline(new_lines[node.lineno - 1 : node.end_lineno or node.lineno])
    return out


def _after_imports(tree: ast.Module) -> int:
    last = 0
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            last = node.end_lineno or node.lineno
        elif isinstance(node, _DEFS):
            break
    body = tree.body
    if not last and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        last = body[0].end_lineno or 0  # after the module docstring
    return last
