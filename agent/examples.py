"""The examples a task states, as tests written without the model.

A task often gives its own checks in code: `split_line('a,"b"') == ['a', 'b']`,
`repr(Money("12.5", "EUR")) must be "Money('12.50', 'EUR')"`, `bump("1.4.2", "minor") returns
"1.5.0"`. A small model asked to write tests from such a task may leave the example out and test
what the code does already; the example itself is exact. Each one found becomes an assert, its
names imported from the file that defines them (or the file the task says to add them to),
inside the test, so that one example whose import fails leaves the others to run.

An example is taken only when its left side is a call and its right side a literal, both
valid Python, and every name it calls is a builtin or a top-level name of the repository's
files: prose that happens to hold `==` is not turned into a test.
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

# What joins an expression to the value it must give, as tasks write it.
_CONNECTORS = re.compile(
    r"\s*(==|must (?:be|return|give|equal)|should (?:be|return|give|equal)|returns|gives|equals|"
    r"evaluates to|is equal to|->|→)\s*"
)
_MAX_SIDE = 240  # characters either side of a connector worth trying


def task_examples(task: str) -> list[tuple[str, str]]:
    """(expression, expected literal) for each example the task states, in order, distinct."""
    found: list[tuple[str, str]] = []
    for match in _CONNECTORS.finditer(task):
        left = _call_before(task[max(0, match.start() - _MAX_SIDE): match.start()])
        right = _literal_after(task[match.end(): match.end() + _MAX_SIDE])
        if left and right and (left, right) not in found:
            found.append((left, right))
    return found


def _call_before(text: str) -> str:
    """The shortest end of `text` that is an expression holding a call (`f(x)`, `repr(M(1))`),
    with the backticks or quotes around it stripped."""
    text = text.rstrip().rstrip("`")
    for start in range(len(text) - 1, -1, -1):
        if start and (text[start - 1].isalnum() or text[start - 1] in "_."):
            continue  # not at the start of a name
        candidate = text[start:]
        if not (candidate[:1].isalpha() or candidate[:1] == "_"):
            continue
        try:
            tree = ast.parse(candidate, mode="eval")
        except SyntaxError:
            continue
        if any(isinstance(node, ast.Call) for node in ast.walk(tree)):
            return candidate.strip()
    return ""


def _literal_after(text: str) -> str:
    """The longest start of `text` that is a Python literal (a number, a string, a list ...)."""
    text = text.lstrip().lstrip("`")
    best = ""
    for end in range(1, len(text) + 1):
        if end < len(text) and text[end - 1] not in "\"')]}" and not text[end - 1].isalnum():
            continue
        candidate = text[:end]
        try:
            ast.literal_eval(candidate)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        best = candidate
    return best.strip()


def called_names(expression: str) -> list[str]:
    """The names an expression calls or reads at its top (`repr`, `Money`), in order."""
    tree = ast.parse(expression, mode="eval")
    return list(dict.fromkeys(n.id for n in ast.walk(tree) if isinstance(n, ast.Name)))


def example_tests(
    task: str, header: str, modules: dict[str, str], target: str
) -> str:
    """A pytest file asserting each example of `task` ("" when it states none that can run).

    `header` is the set-up the repository's tests begin with (imports, sys.path), `modules`
    maps each top-level name of the repository's source to the module that defines it, and
    `target` is the module the task adds to (its names are imported from there)."""
    tests: list[str] = []
    for number, (expression, expected) in enumerate(task_examples(task), 1):
        names = [n for n in called_names(expression) if not hasattr(builtins, n)]
        if any(n not in modules and not target for n in names):
            continue  # a name nothing defines, and no file the task adds to
        imports = [f"    from {modules.get(n, target)} import {n}" for n in names]
        tests.append(
            f"def test_task_example_{number}():\n"
            + "".join(line + "\n" for line in imports)
            + f"    assert {expression} == {expected}\n"
        )
    if not tests:
        return ""
    head = (header.strip() + "\n\n\n") if header.strip() else ""
    return f'"""The examples the task states, as written there."""\n\n{head}' + "\n\n".join(tests)


def module_names(repo: Path, files: list[str], roots: list[Path]) -> dict[str, str]:
    """For each top-level def, class and assignment of `files`: the dotted module that holds
    it, as importable from the first of `roots` (sys.path of the tests) that contains the file."""
    names: dict[str, str] = {}
    for rel in files:
        module = dotted(repo / rel, roots)
        if not module:
            continue
        try:
            tree = ast.parse((repo / rel).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.setdefault(node.name, module)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        names.setdefault(t.id, module)
    return names


def dotted(path: Path, roots: list[Path]) -> str:
    """`src/shop/money.py` under root `src` -> "shop.money" ("" if under no root)."""
    resolved = path.resolve()
    for root in roots:
        try:
            parts = list(resolved.relative_to(root.resolve()).with_suffix("").parts)
        except ValueError:
            continue
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and all(p.isidentifier() for p in parts):
            return ".".join(parts)
    return ""
