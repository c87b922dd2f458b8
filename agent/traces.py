"""The corpus `turnout eval loops` runs: scripted agent traces, looping and healthy, and replies.

Provides `TRACES` (agent runs step by step: the calls with their results, the edits with the
file's content before and after, the test runs) and `REPLIES` (single model replies as text,
some degenerating into repetition, some legitimately repetitive code and prose).

The looping traces are modelled on what small models were seen doing here (the 1.5B model
re-sent the same failing edit of an assertion until the budget ran out:
docs/measurements.md#what-the-15b-model-does-with-tools) and on the loop
kinds the detector claims to catch; each records the step where its loop's first cycle starts
and the cycle's length, so steps-to-detect can be measured. The healthy traces are the ones a
detector is most likely to stop by mistake: long runs that make slow progress, the same file
read in ranges, the same command polled while its output changes, repeated edits of one file.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Call(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: str = "ok"
    is_error: bool = False


class Edit(BaseModel):
    path: str
    before: str
    after: str


class Step(BaseModel):
    """One model reply and what followed it."""

    calls: list[Call] = Field(default_factory=list)
    edits: list[Edit] = Field(default_factory=list)
    tests: str | None = None  # the test output after this step, if tests ran
    passed: bool = False
    invalid: int = 0  # calls in the reply that did not parse or validate
    repetition_aborted: bool = False
    tokens_saved: int = 0


class Trace(BaseModel):
    name: str
    looping: bool
    loop_start: int = 0  # 1-based step where the loop's first cycle begins
    period: int = 0  # steps per cycle
    initial_tests: str = ""
    steps: list[Step]


class Reply(BaseModel):
    name: str
    degenerate: bool
    text: str
    repetition_starts: int = 0  # character offset where the repeated unit first begins


def _fail(n: int = 1, t: int = 3, test: str = "test_add", error: str = "assert -1 == 5") -> str:
    return f"FAILED tests/test_calc.py::{test} - {error}\nE   {error}\n{n} failed, 3 passed in 0.0{t}s"


def _read(path: str, content: str = "def add(a, b):\n    return a - b\n", **extra: Any) -> Call:
    return Call(name="read_file", arguments={"path": path, **extra}, result=content)


def _edit_fails(old: str) -> Call:
    return Call(
        name="replace_in_file", arguments={"path": "calc.py", "old": old, "new": "x"},
        result=f"`old` not found in calc.py: {old!r}", is_error=True,
    )


def _edit_step(path: str, before: str, after: str, tests: str | None, passed: bool = False) -> Step:
    call = Call(name="replace_in_file", arguments={"path": path, "old": before, "new": after},
                result=f"applied to {path}")
    return Step(calls=[call], edits=[Edit(path=path, before=before, after=after)], tests=tests,
                passed=passed)


def _looping() -> list[Trace]:
    assertion_edit = _edit_fails("assert -1 == 5")
    traces = [
        Trace(
            name="the 1.5B model's repeated edit of the assertion (as measured)",
            looping=True, loop_start=2, period=1, initial_tests=_fail(),
            steps=[Step(calls=[Call(name="run_tests", result=_fail())])]
            + [Step(calls=[assertion_edit]) for _ in range(10)],
        ),
        Trace(
            name="the same file read again and again",
            looping=True, loop_start=1, period=1, initial_tests=_fail(),
            steps=[Step(calls=[_read("calc.py")]) for _ in range(10)],
        ),
        Trace(
            name="run_tests polled with nothing changed (timings differ)",
            looping=True, loop_start=2, period=1, initial_tests=_fail(),
            steps=[Step(calls=[_read("calc.py")])]
            + [Step(calls=[Call(name="run_tests", result=_fail(t=i % 9 + 1))], tests=_fail(t=i % 9 + 1))
               for i in range(10)],
        ),
        Trace(
            name="A-B: read the file, run the tests, again",
            looping=True, loop_start=1, period=2, initial_tests=_fail(),
            steps=[Step(calls=[_read("calc.py")]) if i % 2 == 0 else
                   Step(calls=[Call(name="run_tests", result=_fail())], tests=_fail())
                   for i in range(12)],
        ),
        Trace(
            name="A-B-C: read, failing edit, tests, again",
            looping=True, loop_start=2, period=3, initial_tests=_fail(),
            steps=[Step(calls=[Call(name="list_files", result="calc.py\ntests/")])]
            + [[Step(calls=[_read("calc.py")]), Step(calls=[_edit_fails("return a-b")]),
                Step(calls=[Call(name="run_tests", result=_fail())], tests=_fail())][i % 3]
               for i in range(12)],
        ),
        Trace(
            name="a cycle of 4 over two files",
            looping=True, loop_start=3, period=4, initial_tests=_fail(),
            steps=[Step(calls=[_read("README.md", "calc")]), Step(calls=[_read("calc.py")])]
            + [[Step(calls=[_read("util.py", "def total(v): ...")]), Step(calls=[_read("calc.py")]),
                Step(calls=[_edit_fails("return total(v)")]),
                Step(calls=[Call(name="run_tests", result=_fail())], tests=_fail())][i % 4]
               for i in range(20)],
        ),
        Trace(
            name="a cycle of 5 calls",
            looping=True, loop_start=1, period=5, initial_tests=_fail(),
            steps=[[Step(calls=[Call(name="list_files", result="calc.py")]), Step(calls=[_read("calc.py")]),
                    Step(calls=[Call(name="search", arguments={"pattern": "add"}, result="calc.py:1")]),
                    Step(calls=[_edit_fails("a - b ")]),
                    Step(calls=[Call(name="run_tests", result=_fail())], tests=_fail())][i % 5]
                   for i in range(25)],
        ),
        Trace(
            name="edits that apply but leave the same failure",
            looping=True, loop_start=1, period=1, initial_tests=_fail(),
            steps=[_edit_step("calc.py", f"# v{i}\n", f"# v{i + 1}\n", _fail(t=i % 9 + 1)) for i in range(8)],
        ),
        Trace(
            name="an edit and its revert, over and over",
            looping=True, loop_start=1, period=2, initial_tests=_fail(),
            steps=[
                _edit_step("calc.py", "return a - b", "return a * b", _fail(error="assert 6 == 5"))
                if i % 2 == 0 else
                _edit_step("calc.py", "return a * b", "return a - b", _fail())
                for i in range(8)
            ],
        ),
        Trace(
            name="replies with only invalid calls",
            looping=True, loop_start=1, period=1, initial_tests=_fail(),
            steps=[Step(invalid=1) for _ in range(8)],
        ),
        Trace(
            name="degenerate replies, ended early by the runtime",
            looping=True, loop_start=2, period=1, initial_tests=_fail(),
            steps=[Step(calls=[_read("calc.py")])]
            + [Step(repetition_aborted=True, tokens_saved=950) for _ in range(5)],
        ),
        Trace(
            name="progress first, then stuck on the last failure",
            looping=True, loop_start=5, period=1, initial_tests=_fail(n=3),
            steps=[
                Step(calls=[_read("calc.py")]),
                _edit_step("calc.py", "a - b", "a + b", _fail(n=2, test="test_mean", error="ZeroDivisionError")),
                Step(calls=[_read("stats.py", "def mean(v): return sum(v)/(len(v)-1)")]),
                _edit_step("stats.py", "len(v)-1", "len(v)", _fail(n=1, test="test_median", error="assert 2 == 3")),
            ]
            + [Step(calls=[_edit_fails("return v[len(v)//2 - 1]")]) for _ in range(8)],
        ),
    ]
    return traces


def _healthy() -> list[Trace]:
    lines = [f"line {i}" for i in range(400)]
    return [
        Trace(
            name="a straight fix",
            looping=False, initial_tests=_fail(),
            steps=[
                Step(calls=[Call(name="run_tests", result=_fail())], tests=_fail()),
                Step(calls=[_read("calc.py")]),
                _edit_step("calc.py", "a - b", "a + b", "5 passed in 0.02s", passed=True),
            ],
        ),
        Trace(
            name="a long run that fixes one failure after another",
            looping=False, initial_tests=_fail(n=6),
            steps=[
                step
                for k in range(6)
                for step in (
                    Step(calls=[_read(f"mod{k}.py", f"def f{k}(): return {k}")]),
                    Step(calls=[Call(name="search", arguments={"pattern": f"f{k}"}, result=f"mod{k}.py:1")]),
                    _edit_step(
                        f"mod{k}.py", f"return {k}", f"return {k + 1}",
                        _fail(n=5 - k, test=f"test_f{k + 1}", error=f"assert {k + 1} == {k + 2}")
                        if k < 5 else "12 passed in 0.05s",
                        passed=k == 5,
                    ),
                )
            ],
        ),
        Trace(
            name="a big file read in ranges",
            looping=False, initial_tests=_fail(),
            steps=[
                Step(calls=[_read("big.py", "\n".join(lines[i * 50:(i + 1) * 50]), start_line=i * 50 + 1)])
                for i in range(8)
            ] + [_edit_step("big.py", "line 7", "line seven", "8 passed in 0.1s", passed=True)],
        ),
        Trace(
            name="the same command polled while its output changes",
            looping=False, initial_tests=_fail(),
            steps=[
                Step(calls=[Call(name="run_command", arguments={"cmd": "tail -n 1 build.log"},
                                 result=f"compiling unit {i} of 9")])
                for i in range(9)
            ],
        ),
        Trace(
            name="many edits to one file, each forward",
            looping=False, initial_tests=_fail(n=5),
            steps=[
                _edit_step("calc.py", f"version {i}", f"version {i + 1}",
                           _fail(n=5 - i, test=f"test_{i}", error=f"assert {i} == {i + 1}") if i < 4 else
                           "9 passed", passed=i == 4)
                for i in range(5)
            ],
        ),
        Trace(
            name="the same failure twice, then a different fix works",
            looping=False, initial_tests=_fail(),
            steps=[
                _edit_step("calc.py", "# a", "# b", _fail(t=4)),
                Step(calls=[_read("calc.py")]),
                _edit_step("calc.py", "a - b", "a + b", "5 passed", passed=True),
            ],
        ),
        Trace(
            name="exploring a repository file by file",
            looping=False, initial_tests=_fail(),
            steps=[Step(calls=[Call(name="list_files", arguments={"path": "."}, result="a.py b.py c.py")])]
            + [Step(calls=[_read(f"pkg/m{i}.py", f"content {i}")]) for i in range(12)],
        ),
        Trace(
            name="read, edit, test, with a new failure each round",
            looping=False, initial_tests=_fail(n=4),
            steps=[
                step
                for k in range(4)
                for step in (
                    Step(calls=[_read("calc.py", f"revision {k}")]),
                    _edit_step("calc.py", f"revision {k}", f"revision {k + 1}",
                               _fail(n=3 - k, test=f"test_{k}", error=f"assert {k} == 9") if k < 3 else "ok",
                               passed=k == 3),
                )
            ],
        ),
        Trace(
            name="tests run twice in a row, then the fix",
            looping=False, initial_tests=_fail(),
            steps=[
                Step(calls=[Call(name="run_tests", result=_fail())], tests=_fail()),
                Step(calls=[Call(name="run_tests", result=_fail(t=5))], tests=_fail(t=5)),
                _edit_step("calc.py", "a - b", "a + b", "5 passed", passed=True),
            ],
        ),
        Trace(
            name="two tools alternating on different arguments",
            looping=False, initial_tests=_fail(),
            steps=[
                Step(calls=[_read(f"src/f{i // 2}.py", f"body {i // 2}")]) if i % 2 == 0 else
                Step(calls=[Call(name="search", arguments={"pattern": f"name{i // 2}"}, result=f"hit {i // 2}")])
                for i in range(14)
            ],
        ),
    ]


TRACES: list[Trace] = _looping() + _healthy()


_CODE = '''def parse(line):
    fields = line.split(",")
    if len(fields) != 3:
        raise ValueError(f"expected 3 fields, got {len(fields)}")
    return Record(name=fields[0], kind=fields[1], size=int(fields[2]))
'''
_PROSE = "The failing test calls add(2, 3) and expects 5, but the function subtracts. "


def _replies() -> list[Reply]:
    degenerate = [
        ("one word forever", _PROSE, "the " * 200),
        ("one line forever", "I will fix it.\n", "Let me read the file.\n" * 60),
        ("a code line forever", _CODE, "    return None\n" * 80),
        ("a long sentence forever", _PROSE,
         "I apologize for the confusion, the function should add the two numbers. " * 20),
        ("zeros in an array forever", "TABLE = [", "0, " * 300),
        ("a JSON key forever", '{"name": "replace_in_file", "arguments": {"path": "calc.py", ',
         '"old": "x", ' * 100),
    ]
    healthy = [
        ("code with similar lines", _CODE * 3),
        ("a markdown table", "| a | b |\n|---|---|\n" + "".join(f"| {i} | {i * i} |\n" for i in range(30))),
        ("a tool call with a file's content", '{"name": "write_file", "arguments": {"path": "calc.py", '
         '"content": ' + repr(_CODE * 2) + "}}"),
        ("a numbered list", "".join(f"{i}. Step {i}: check item {i}.\n" for i in range(1, 30))),
        ("a short array of zeros", "ZEROS = [0, 0, 0, 0, 0, 0, 0, 0]\n" + _CODE),
        ("a separator line", "=" * 60 + "\nResults\n" + "=" * 60 + "\n" + _PROSE),
        ("plain prose", _PROSE * 1 + "So the fix is to return a + b instead of a - b in calc.py."),
    ]
    replies = [
        Reply(name=name, degenerate=True, text=prefix + repeated, repetition_starts=len(prefix))
        for name, prefix, repeated in degenerate
    ]
    replies += [Reply(name=name, degenerate=False, text=text) for name, text in healthy]
    return replies


REPLIES: list[Reply] = _replies()
