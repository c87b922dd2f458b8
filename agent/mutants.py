"""One-token variations of the code a failing test ran, tried without asking the model.

Many one-place bugs are a single token away from right: a comparison (`<` for `<=`), an
off-by-one (`text[:width]` for `text[: width - 1]`), a wrong constant (`pi / 360`, a factor off
by a thousand), an `except` that catches too much, a field missing the zero-padding its
siblings have. A small model often reads such a line and does not see it; trying every small
variation of the lines the failing test actually ran is cheap (a test run each, no tokens) and
exact. The lines come from the trace of the failing test (`tools/trace_runner.py`), plus the
module-level assignments those lines read, since a constant is set at import, before any test.

Each variation is a whole-file candidate like any other: it lands only when the whole suite
passes on the scratch copy, and the report says it came from here, not from the model.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel


class Mutant(BaseModel):
    path: str
    line: int
    before: str  # the source line as it is
    after: str  # the same line changed
    text: str  # the whole file with the change

    @property
    def description(self) -> str:
        return f"{self.path}:{self.line}: `{self.before.strip()}` -> `{self.after.strip()}`"


_HEADER = re.compile(r"^(\s*)(\S+?\.py):(\d+) ")
_STEP = re.compile(r"^(\s*)(\d+): ")


def traced_lines(trace: str) -> dict[str, list[int]]:
    """The lines a trace shows running, per file, in the order they first ran. A call's header
    (`path:N name(...)`) opens a frame at its depth; its steps (`N: source`) sit one deeper."""
    frames: dict[int, str] = {}
    lines: dict[str, list[int]] = {}
    for raw in trace.splitlines():
        if header := _HEADER.match(raw):
            depth = len(header.group(1)) // 2
            frames[depth] = header.group(2)
            frames = {d: f for d, f in frames.items() if d <= depth}
            continue
        if step := _STEP.match(raw):
            path = frames.get(len(step.group(1)) // 2 - 1)
            if path is not None:
                seen = lines.setdefault(path, [])
                if int(step.group(2)) not in seen:
                    seen.append(int(step.group(2)))
    return lines


_STR_SET = re.compile(r"""(?:->|,) (\w+) = ['"]""")


def string_lines(trace: str) -> dict[str, set[int]]:
    """The traced lines that set a variable to a string (`N: ...    -> name = 'text'`): where a
    missing normalization (case, whitespace, a prefix, path separators) would go."""
    frames: dict[int, str] = {}
    last_step: dict[int, int] = {}  # per frame depth, the line that ran last
    found: dict[str, set[int]] = {}
    for raw in trace.splitlines():
        if header := _HEADER.match(raw):
            depth = len(header.group(1)) // 2
            frames = {d: f for d, f in frames.items() if d < depth} | {depth: header.group(2)}
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        path = frames.get(indent // 2 - 1)
        if path is None:
            continue
        if step := _STEP.match(raw):
            last_step[indent // 2 - 1] = int(step.group(2))
            if "    -> " in raw and _STR_SET.search(", " + raw.split("    -> ", 1)[1]):
                found.setdefault(path, set()).add(int(step.group(2)))
        elif re.match(r"return ['\"]", raw.lstrip(" ")) and indent // 2 - 1 in last_step:
            found.setdefault(path, set()).add(last_step[indent // 2 - 1])  # `return <a string>`
    return found


def suspicious_lines(source: str, ran: list[int], trace: str = "") -> list[int]:
    """The lines that ran, then the lines of every module-level assignment they read."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return list(ran)
    return list(dict.fromkeys([*ran, *assignment_lines(tree, _names_read(tree, set(ran)), trace)]))


def _names_read(tree: ast.Module, lines: set[int]) -> set[str]:
    return {node.id for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.lineno in lines}


def assignment_lines(tree: ast.Module, names: set[str], trace: str = "") -> list[int]:
    """The lines of the module-level assignments to `names`, and of the assignments their values
    read in turn (`DIMENSIONS = {"length": LENGTH}` brings in LENGTH). Lines holding a dict
    entry whose key the trace shows bound to a name (`unit='mi'`) come first: the entry the
    test looked up."""
    assigned: dict[str, list[ast.stmt]] = {}
    for stmt in tree.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets = [stmt.target]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    assigned.setdefault(node.id, []).append(stmt)
    pending, done, statements = list(names), set(), []
    while pending:
        name = pending.pop(0)
        if name in done:
            continue
        done.add(name)
        for stmt in assigned.get(name, []):
            if stmt not in statements:
                statements.append(stmt)
                value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
                pending += [n.id for n in ast.walk(value) if isinstance(n, ast.Name)] if value else []
    lines = [n for stmt in statements for n in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)]
    looked_up = {
        key.lineno
        for stmt in statements for node in ast.walk(stmt) if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str | int) and _bound_in(trace, key.value)
    }
    return sorted(dict.fromkeys(lines), key=lambda n: n not in looked_up)


def _bound_in(trace: str, value: str | int) -> bool:
    """Whether the trace shows `value` bound to a name (`unit='mi'`, `-> key = 3`): a value the
    test passed around, not one that only shows in a printed dict (`{'mm': 0.001, 'mi': ...}`)."""
    return re.search(r"=\s*" + re.escape(repr(value)) + r"(?=[,)\s]|$)", trace, re.MULTILINE) is not None


def imported_reads(source: str, ran: list[int]) -> list[tuple[str, int, str]]:
    """(module, relative level, name) for each name the `ran` lines read from another module:
    `from m import NAME` then `NAME`, or `import m` / `from pkg import m` then `m.NAME`. A
    constant that is wrong where it is defined is read here but set there, at import."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    bound: dict[str, tuple[str, int, str]] = {}  # local name -> (module, level, name there)
    modules: dict[str, tuple[str, int]] = {}  # local name -> (module, level) it binds
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                local = alias.asname or alias.name
                bound[local] = (stmt.module or "", stmt.level, alias.name)
                inner = f"{stmt.module}.{alias.name}" if stmt.module else alias.name
                modules[local] = (inner, stmt.level)  # in case the name is a submodule
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    modules[alias.asname] = (alias.name, 0)
    ran_set = set(ran)
    found: list[tuple[int, int, tuple[str, int, str]]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) not in ran_set:
            continue
        place = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and bound.get(node.id, ("",))[0]:
            found.append((*place, bound[node.id]))  # `from . import x` binds a module: see below
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            found.append((*place, (*modules[node.value.id], node.attr)))
    return list(dict.fromkeys(read for *_, read in sorted(found)))


def interleaved(groups: list[list[Mutant]], limit: int) -> list[Mutant]:
    """Up to `limit` mutants taking one from each group in turn, so that every file the failing
    test touched gets a share of the bound, not only the first."""
    found: list[Mutant] = []
    for row in range(max((len(g) for g in groups), default=0)):
        found += [g[row] for g in groups if row < len(g)]
    return found[:limit]


def mutants_of(
    path: str, source: str, lines: list[int], limit: int, strings: set[int] | frozenset[int] = frozenset()
) -> list[Mutant]:
    """Up to `limit` distinct one-token variations of `lines` (in that order) of `source`;
    on the `strings` lines (they set a string), normalizations of the value set too."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    normalizers = _normalizers(tree, source, strings)
    file_lines = source.splitlines(keepends=True)
    by_line: dict[int, list[ast.AST]] = {}
    for node in ast.walk(tree):
        lineno = getattr(node, "lineno", None)
        single = lineno is not None and lineno == getattr(node, "end_lineno", None)
        # An except clause spans its body; its types sit on its first line.
        handler = isinstance(node, ast.ExceptHandler) and node.type is not None \
            and node.type.lineno == node.type.end_lineno == lineno
        if single or handler:
            by_line.setdefault(lineno, []).append(node)
    found: list[Mutant] = []
    seen: set[str] = set()
    for lineno in lines:
        if not 1 <= lineno <= len(file_lines):
            continue
        line = file_lines[lineno - 1]
        nodes = sorted(by_line.get(lineno, []), key=lambda n: getattr(n, "col_offset", 0))
        variants = [*_node_variants(line, nodes), *_format_variants(line), *normalizers.get(lineno, [])]
        for after in variants:
            if after == line or after in seen:
                continue
            text = "".join(file_lines[: lineno - 1]) + after + "".join(file_lines[lineno:])
            try:
                ast.parse(text)
            except SyntaxError:
                continue
            seen.add(after)
            found.append(Mutant(path=path, line=lineno, before=line.rstrip("\n"),
                                after=after.rstrip("\n"), text=text))
            if len(found) >= limit:
                return found
    return found


_COMPARISONS = ["<", "<=", ">", ">=", "==", "!="]
_FLIPS = {"==": ["!="], "!=": ["=="], "in": ["not in"], "not in": ["in"], "is": ["is not"],
          "is not": ["is"]}
_ARITHMETIC = {"+": ["-"], "-": ["+"], "*": ["/", "//"], "/": ["*", "//"], "//": ["/", "%"],
               "%": ["//"]}
_NUMERIC_CALLS = {"Decimal", "float", "int", "Fraction"}


def _splice(line: str, start: int, end: int, new: str) -> str:
    return line[:start] + new + line[end:]


def _gap_op(line: str, start: int, end: int, old: str, new: str) -> str | None:
    """Replace the operator `old` found between two operands (columns start..end)."""
    gap = line[start:end]
    pattern = r"(?<![\w<>=!*/+-])" + re.escape(old) + r"(?![\w<>=*/])" if old.isalpha() or " " in old \
        else r"(?<![<>=!*/+-])" + re.escape(old) + r"(?![<>=*/])"
    match = re.search(pattern, gap)
    if match is None:
        return None
    return line[: start + match.start()] + new + line[start + match.end():]


def _node_variants(line: str, nodes: list[ast.AST]) -> Iterator[str]:
    for node in nodes:
        if isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                old = _op_text(op)
                options = [c for c in _COMPARISONS if c != old] if old in _COMPARISONS else _FLIPS.get(old, [])
                for new in options:
                    if (v := _gap_op(line, left.end_col_offset or 0, right.col_offset, old, new)) is not None:
                        yield v
                left = right
        elif isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Add | ast.Sub) and isinstance(node.right, ast.Constant) \
                    and type(node.right.value) is int:
                yield _without_term(line, node)
            old = _op_text(node.op)
            for new in _ARITHMETIC.get(old, []):
                if (v := _gap_op(line, node.left.end_col_offset or 0, node.right.col_offset, old, new)) is not None:
                    yield v
        elif isinstance(node, ast.BoolOp):
            old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            for left, right in zip(node.values, node.values[1:]):
                if (v := _gap_op(line, left.end_col_offset or 0, right.col_offset, old, new)) is not None:
                    yield v
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield _splice(line, node.col_offset, node.operand.col_offset, "")
        elif isinstance(node, ast.Constant):
            yield from _constant_variants(line, node, nodes)
        elif isinstance(node, ast.Slice):
            for bound in (node.lower, node.upper):
                if bound is not None and not isinstance(bound, ast.Constant):
                    yield from _plus_minus_one(line, bound)
        elif isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice | ast.Constant | ast.Tuple):
            yield from _plus_minus_one(line, node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            for arg in node.args:
                if not isinstance(arg, ast.Constant):
                    yield from _plus_minus_one(line, arg)
        elif isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Tuple):
            # Caught too broadly: one of the types should have gone through.
            elements = node.type.elts
            for drop in range(len(elements)):
                kept = [_segment(line, e) for i, e in enumerate(elements) if i != drop]
                new = kept[0] if len(kept) == 1 else "(" + ", ".join(kept) + ")"
                yield _splice(line, node.type.col_offset, node.type.end_col_offset or 0, new)


def _without_term(line: str, node: ast.BinOp) -> str:
    """`(len(values) - 1)` -> `len(values)`: an off-by-one whose fix is no offset at all (and
    not the `- 0` a constant's variation would write)."""
    start, end = node.col_offset, node.end_col_offset or node.col_offset
    left = _segment(line, node.left)
    atom = isinstance(node.left, ast.Name | ast.Call | ast.Attribute | ast.Subscript | ast.Constant)
    if atom and line[start - 1: start] == "(" and line[end: end + 1] == ")":
        start, end = start - 1, end + 1
    return _splice(line, start, end, left)


def _segment(line: str, node: ast.AST) -> str:
    return line[getattr(node, "col_offset", 0): getattr(node, "end_col_offset", 0)]


def _plus_minus_one(line: str, expr: ast.expr) -> Iterator[str]:
    if isinstance(expr, ast.BoolOp | ast.IfExp | ast.Compare | ast.Lambda | ast.NamedExpr):
        return
    start, end = expr.col_offset, expr.end_col_offset or expr.col_offset
    text = line[start:end]
    for delta in (" - 1", " + 1"):
        yield _splice(line, start, end, text + delta)


def _op_text(op: ast.AST) -> str:
    return {
        ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
        ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+",
        ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    }.get(type(op), "?")


def _constant_variants(line: str, node: ast.Constant, siblings: list[ast.AST]) -> Iterator[str]:
    start, end = node.col_offset, node.end_col_offset or node.col_offset
    value = node.value
    if isinstance(value, bool):
        yield _splice(line, start, end, str(not value))
    elif isinstance(value, int):
        additive = any(isinstance(n, ast.BinOp) and n.right is node and isinstance(n.op, ast.Add | ast.Sub)
                       for n in siblings)
        for new in _int_variants(value):
            if not (additive and new == 0):  # `x - 0`: `_without_term` writes it as `x`
                yield _splice(line, start, end, str(new))
    elif isinstance(value, float):
        for new in _scaled(Decimal(repr(value))):
            yield _splice(line, start, end, _float_text(new))
    elif isinstance(value, str) and _in_numeric_call(node, siblings):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return
        quote = line[start]
        for new in _scaled(number):
            yield _splice(line, start, end, f"{quote}{_decimal_text(new)}{quote}")


def _int_variants(n: int) -> list[int]:
    options = [n + 1, n - 1]
    if n not in (0, 1):
        options += [n * 2, n * 10]
        if n % 2 == 0:
            options.append(n // 2)
        if n % 10 == 0:
            options.append(n // 10)
    return options


def _scaled(number: Decimal) -> list[Decimal]:
    """A constant off by a usual factor: a unit's thousand, a misplaced decimal point, a half."""
    return [number * 10, number / 10, number * 1000, number / 1000, number * 2, number / 2]


def _float_text(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text if "." in text else text + ".0"


def _decimal_text(number: Decimal) -> str:
    return format(number.normalize(), "f")


def _in_numeric_call(node: ast.Constant, siblings: list[ast.AST]) -> bool:
    """A numeric string that is the argument of Decimal("0.50") and the like."""
    for other in siblings:
        if (isinstance(other, ast.Call) and isinstance(other.func, ast.Name)
                and other.func.id in _NUMERIC_CALLS and node in other.args):
            return True
    return False


# Normalizations a string often lacks: case, surrounding whitespace, Windows path separators.
_COMMON_NORMALIZATIONS = [".lower()", ".strip()", '.replace("\\\\", "/")']


def _normalizers(tree: ast.Module, source: str, strings: set[int] | frozenset[int]) -> dict[int, list[str]]:
    """For each line in `strings` that assigns one name: the line with its value normalized:
    a common normalization, a method the same function applies to that name elsewhere
    (`s = s.removeprefix(CURRENCY)` before, `s = s[1:]` here), or a one-argument function of
    the module (`_norm(value)`)."""
    if not strings:
        return {}
    lines = source.splitlines(keepends=True)
    helpers = [f.name for f in tree.body if isinstance(f, ast.FunctionDef)
               and len(f.args.args) == 1 and not f.args.vararg and not f.args.kwonlyargs]
    found: dict[int, list[str]] = {}
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        assigns = [n for n in ast.walk(function) if isinstance(n, ast.Assign) and len(n.targets) == 1
                   and isinstance(n.targets[0], ast.Name) and n.value.lineno == n.value.end_lineno]
        applied: dict[str, list[str]] = {}
        for node in assigns:
            value, name = node.value, node.targets[0].id  # type: ignore[attr-defined]
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                    and isinstance(value.func.value, ast.Name) and value.func.value.id == name):
                line = lines[value.lineno - 1]
                method = line[value.func.value.end_col_offset or 0: value.end_col_offset or 0]
                applied.setdefault(name, []).append(method)
        returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None
                   and n.lineno == n.end_lineno]
        for node in [*assigns, *returns]:
            if node.lineno not in strings or node.lineno != node.end_lineno or node.value is None:
                continue
            name = node.targets[0].id if isinstance(node, ast.Assign) else ""  # type: ignore[attr-defined]
            value = node.value
            line = lines[node.lineno - 1]
            start, end = value.col_offset, value.end_col_offset or value.col_offset
            text = line[start:end]
            atom = isinstance(value, ast.Name | ast.Call | ast.Attribute | ast.Subscript | ast.Constant)
            base = text if atom else f"({text})"
            suffixes = list(dict.fromkeys([*applied.get(name, []), *_COMMON_NORMALIZATIONS]))
            options = [base + suffix for suffix in suffixes if not text.endswith(suffix)]
            options += [f"{helper}({text})" for helper in helpers if helper != function.name]
            found.setdefault(node.lineno, []).extend(_splice(line, start, end, o) for o in options)
    return found


_FIELD = re.compile(r"\{([A-Za-z_][\w.]*)(![rsa])?(:[^{}]*)?\}")


def _format_variants(line: str) -> Iterator[str]:
    """In an f-string or format string whose fields carry a format spec, a field without one is
    given its siblings' spec (`{minutes}` beside `{secs:02d}`), and a field with one loses it."""
    fields = list(_FIELD.finditer(line))
    specs = [m.group(3) for m in fields if m.group(3)]
    for match in fields:
        if match.group(3):
            yield _splice(line, match.start(3), match.end(3), "")
        else:
            for spec in dict.fromkeys(specs):
                yield _splice(line, match.end(1) + len(match.group(2) or ""),
                              match.end(1) + len(match.group(2) or ""), spec)
