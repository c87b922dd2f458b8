"""The policy's own patterns (`labels.NAME.patterns`), compiled so that none can hang the router.

A user's regular expression runs over every request; one that backtracks catastrophically
(`(a+)+$` on a long run of `a`) would stop every request for minutes. Three guards:

- `check_pattern` (run when the policy is read, so `turnout policy check` and every command
  refuse it): a repetition whose body can be matched by a repetition inside it alone
  (`(a+)+`, `(\\w+\\s*)*`, `(?:x*)+`) has exponentially many ways to split a text and is refused,
  naming the pattern and the reason;
- `compile_pattern`: where RE2 (`google-re2`, linear time, no backtracking) accepts the pattern
  it runs on RE2; only a pattern RE2 cannot run (look-arounds, back-references) runs on
  Python's `re`;
- `trial` (run by `turnout policy check`): each pattern left to Python's `re` is run, in a
  child process with a time budget, on texts built from its own characters to make it
  backtrack; one that does not finish in time is refused.
"""

from __future__ import annotations

import json
import re
import re._constants as sre_constants
import re._parser as sre_parse
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, Protocol

import re2

TRIAL_SECONDS = 2.0
_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)


class Matcher(Protocol):
    def finditer(self, text: str) -> Iterator[Any]: ...


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a pattern RE2 cannot run is expected, not an error to print
    return options


_OPTIONS = _re2_options()


def compile_pattern(pattern: str) -> Matcher:
    """The pattern on RE2 where RE2 can run it (linear time), else on Python's `re`."""
    try:
        return re2.compile(pattern, _OPTIONS)  # type: ignore[no-any-return]
    except re2.error:
        return re.compile(pattern)


def runs_on_re2(pattern: str) -> bool:
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error:
        return False
    return True


def check_pattern(pattern: str) -> str | None:
    """Why `pattern` may not be used (it can backtrack catastrophically), or None."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None  # the validator reports the syntax error itself
    nested = _nested_repeat(list(parsed))
    if nested:
        return (
            f"pattern {pattern!r} can take exponential time on a text it does not match: {nested}; "
            "write it without the nested repetition (for example '(a+)+$' as 'a+$', "
            "'(\\w+\\s?)+' as '[\\w\\s]+')"
        )
    return None


def _nested_repeat(items: list[Any]) -> str:
    for op, av in items:
        if op in _REPEATS:
            _, high, body = av
            body = list(body)
            if high > 1 and _carried_by_inner_repeat(body):
                return "a repetition whose body can be matched by a repetition inside it alone (like (a+)+)"
            found = _nested_repeat(body)
            if found:
                return found
        else:
            for sub in _children(op, av):
                found = _nested_repeat(sub)
                if found:
                    return found
    return ""


def _carried_by_inner_repeat(body: list[Any]) -> bool:
    """True when one item of `body` is a repetition of more than one and every other item may
    match nothing: then each turn of the outer repetition can be any slice of the text the
    inner one matches, and a failing match tries every way of cutting it."""
    inner = [item for item in body if _variable_repeat(item)]
    if not inner:
        return False
    return all(_can_be_empty(item) for item in body if item is not inner[0])


def _variable_repeat(item: tuple[Any, Any]) -> bool:
    op, av = item
    if op in _REPEATS:
        low, high, _ = av
        return high > 1 and high != low
    if op == sre_constants.SUBPATTERN:
        body = list(av[3])
        return len(body) >= 1 and _carried_by_inner_repeat(body)
    if op == sre_constants.BRANCH:
        return any(_carried_by_inner_repeat(list(branch)) for branch in av[1])
    if op == sre_constants.ATOMIC_GROUP:
        return False  # an atomic group gives back nothing: no exponential split
    return False


def _can_be_empty(item: tuple[Any, Any]) -> bool:
    op, av = item
    if op in _REPEATS:
        return av[0] == 0 or all(_can_be_empty(x) for x in av[2])
    if op == sre_constants.SUBPATTERN:
        return all(_can_be_empty(x) for x in av[3])
    if op == sre_constants.BRANCH:
        return any(all(_can_be_empty(x) for x in branch) for branch in av[1])
    return op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT)


def _children(op: Any, av: Any) -> Iterator[list[Any]]:
    if op == sre_constants.SUBPATTERN:
        yield list(av[3])
    elif op == sre_constants.BRANCH:
        yield from (list(branch) for branch in av[1])
    elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        yield list(av[1])
    elif op == sre_constants.ATOMIC_GROUP:
        yield list(av)
    elif op == sre_constants.GROUPREF_EXISTS:
        yield list(av[1])
        if av[2] is not None:
            yield list(av[2])


def adversarial_texts(pattern: str) -> list[str]:
    """Texts that make a backtracking engine work hard on `pattern`: long runs of the
    characters it names, alone and in pairs, each ending in a character it cannot match."""
    chars: list[str] = []
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return []
    _collect_chars(list(parsed), chars)
    chars = list(dict.fromkeys(chars))[:8] or ["a"]
    texts = []
    for length in (28, 3000):
        for c in chars:
            texts.append(c * length + "\x00")
        for a in chars[:4]:
            for b in chars[:4]:
                if a != b:
                    texts.append((a + b) * (length // 2) + "\x00")
    return texts


def _collect_chars(items: list[Any], out: list[str]) -> None:
    categories = {
        sre_constants.CATEGORY_DIGIT: "1", sre_constants.CATEGORY_WORD: "a",
        sre_constants.CATEGORY_SPACE: " ", sre_constants.CATEGORY_NOT_DIGIT: "a",
        sre_constants.CATEGORY_NOT_WORD: " ", sre_constants.CATEGORY_NOT_SPACE: "a",
    }
    for op, av in items:
        if op == sre_constants.LITERAL:
            out.append(chr(av))
        elif op == sre_constants.IN:
            for kind, value in av:
                if kind == sre_constants.LITERAL:
                    out.append(chr(value))
                elif kind == sre_constants.RANGE:
                    out.append(chr(value[0]))
                elif kind == sre_constants.CATEGORY and value in categories:
                    out.append(categories[value])
        elif op == sre_constants.ANY:
            out.append("a")
        elif op in _REPEATS:
            _collect_chars(list(av[2]), out)
        else:
            for sub in _children(op, av):
                _collect_chars(sub, out)


_TRIAL_CHILD = """
import json, re, sys
pattern, texts = json.loads(sys.stdin.read())
compiled = re.compile(pattern)
for text in texts:
    compiled.search(text)
"""


def trial(pattern: str, seconds: float = TRIAL_SECONDS) -> str | None:
    """Why `pattern` is refused after running on its adversarial texts (too slow), or None.
    Patterns RE2 runs need no trial: RE2 takes linear time whatever the pattern."""
    if runs_on_re2(pattern):
        return None
    texts = adversarial_texts(pattern)
    try:
        subprocess.run(
            [sys.executable, "-c", _TRIAL_CHILD], input=json.dumps([pattern, texts]), text=True,
            capture_output=True, timeout=seconds, check=False,
        )
    except subprocess.TimeoutExpired:
        return (
            f"pattern {pattern!r} took more than {seconds:g} s on a {max(map(len, texts))}-character "
            "text built from its own characters (it backtracks catastrophically on Python's re, "
            "and RE2 cannot run it); simplify it, or avoid look-arounds and back-references so "
            "RE2 can run it"
        )
    return None
