"""Every text the agent writes to a model, in one place.

The router's work classifier keys on two phrases written here (`STILL_FAILING`, the marker of a
reflection round, and the invalid-call marker of chat), so they are constants, not prose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from turnout.agent.testrun import TestOutcome

STILL_FAILING = "still fail"  # router/classify.py counts these to call the work hard

SYSTEM_CHAT = """\
You are turnout chat, an assistant on the user's machine with tools. When a question is about \
the user's files, git repository or tests, call the right tool yourself first (never tell the \
user to run it), then answer from its result in plain words."""


def invalid_call(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems)
    return f"Your tool call was not valid and was not run:\n{listed}\nCorrect it, or answer in words."


SYSTEM_REPAIR = (
    "You are turnout, a careful coding agent. You fix the code under test so that the failing "
    "tests pass. The tests are the specification: never change them. Keep the fix as small as "
    "the bug; do not rename, reformat or reorganise anything else."
)

SYSTEM_TASK = (
    "You are turnout, a careful coding agent. You make the change the task asks for in the "
    "repository, keeping the existing tests passing. Keep the change as small as the task; do "
    "not rename, reformat or reorganise anything else."
)

SYSTEM_SPEC = (
    "You are turnout, a careful coding agent. Before a task is done, you write the tests that "
    "show it is done: pytest tests of exactly what the task states, each example it gives and "
    "each rule it names, and nothing it does not state."
)

SPEC_FORM = """\
Do not change any code yet. First write the tests for this task, as the file {path}: one short \
test per example or rule the task states, with plain asserts of the exact values it gives. Test \
what the task adds or changes, not what the code does already: each test must fail on the code \
as it is now. {imports_note}Write only that file, in one ```python block."""


def spec_form(path: str, imports: str) -> str:
    """Ask for the task's tests as one file, importing and setting up the code as the
    repository's tests do (`imports`: an existing test file, or its head)."""
    note = (f"Import and set up the code as the existing tests do:\n```python\n{imports}\n```\n"
            if imports else "")
    return SPEC_FORM.format(path=path, imports_note=note)


def spec_retry(problem: str, names: list[str]) -> str:
    """Why the task's tests just written cannot judge a change, and what to do instead."""
    what = (f" Each test must use what the task adds ({', '.join(names)}), which the code does not "
            "have yet." if names else " Each test must check what the task adds or changes.")
    if "fixture" in problem:
        what += " A test function's parameters are fixtures: write tests that take no parameters."
    return (f"Those tests cannot judge the change: {problem}.{what} Write the whole test file "
            "again, in one ```python block.")


def import_lines(test_source: str) -> str:
    """The head of a test file, up to its first test or fixture: the imports and path set-up a
    new test file beside it needs."""
    head: list[str] = []
    for line in test_source.splitlines():
        if line.startswith(("def ", "class ", "@", "async def ")):
            break
        head.append(line)
    return "\n".join(head).strip()


_PYTHON_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


def spec_code(reply: str) -> str:
    """The test file in a reply: its first fenced block (an unclosed one runs to the end)."""
    match = _PYTHON_BLOCK.search(reply)
    return (match.group(1) if match else reply).strip() + "\n"


def spec_section(path: str, text: str) -> str:
    """The task's tests, as every later round of the run sees them."""
    return (f"Tests written from the task ({path}); every change is run against them and the "
            f"repository's own tests:\n```python\n{text.rstrip()}\n```")


WHOLE_FORM = """\
Write each function or class you change, complete, in a fenced code block after its file's \
path on a line of its own (a new file: the whole file). For example, a fix to `area` in \
shapes.py would be written:

shapes.py
```python
def area(width, height):
    return width * height
```

Definitions you leave out stay as they are."""

# Replies that copy the examples above instead of answering: their edits are dropped.
EXAMPLE_PATH = "shapes.py"

REPLACE_FORM = """\
{files} {verb} too long to rewrite: change {pronoun} with SEARCH/REPLACE blocks. Write the \
path on a line of its own, then:

<<<<<<< SEARCH
...lines copied exactly from the file...
=======
...the lines that replace them...
>>>>>>> REPLACE"""


def context_prompt(
    task: str,
    tests: TestOutcome,
    mode: str,
    shown: Mapping[str, str],
    repo_map: str,
    output_chars: int = 3000,
    trace: tuple[str, str] = ("", ""),
) -> str:
    """The task, what the tests say, the code it concerns and a map of the rest. Every round
    sends this same text first and its own answer form after it, so the runtime's KV cache
    holds the context once for the whole run."""
    parts = [f"Task: {task}"]
    if mode == "repair":
        parts.append(
            f"The tests fail ({without_timings(tests.summary) or f'exit code {tests.exit_code}'}):\n"
            f"```\n{tail(without_timings(tests.output), output_chars)}\n```"
        )
    elif tests.exit_code == 0:
        parts.append(f"The tests pass now ({without_timings(tests.summary)}); they must still pass after your change.")
    if shown:
        label = "The code under test" if mode == "repair" else "Files that look relevant"
        blocks = [f"{rel}\n```{fence_language(rel)}\n{text.rstrip()}\n```" for rel, text in shown.items()]
        parts.append(f"{label}:\n\n" + "\n\n".join(blocks))
    test, steps = trace
    if steps:
        parts.append(
            f"What the code under test did while {test} ran: each call with its arguments, each "
            f"line it ran (number: source) with the values that line set after `->`, each "
            f"return value:\n```\n{steps.rstrip()}\n```"
        )
    if repo_map:
        parts.append(f"Other files in the repository:\n{repo_map}")
    return "\n\n".join(parts)


ALTERNATIVES_FORM = """\
Do not rewrite anything yet. Find the lines where the bug could be, and for each give the \
smallest fix you can think of: up to {count} different fixes, the most likely first. Write each \
as a SEARCH/REPLACE block under its file's path: SEARCH holds lines copied exactly from that \
file, REPLACE the same lines corrected. For example, if a file shapes.py computed an area with \
`return width * height / 2` where the tests expect `width * height`, the block would be:

shapes.py
<<<<<<< SEARCH
    return width * height / 2
=======
    return width * height
>>>>>>> REPLACE

Each block is tried on its own, so each must be a complete fix by itself. Write nothing else."""


def alternatives_form(count: int) -> str:
    """Several small, independent fixes in one short reply: each is tested on its own, so one
    cheap reply buys several tries."""
    return ALTERNATIVES_FORM.format(count=count)


def answer_form(mode: str, forms: Mapping[str, str]) -> str:
    if mode == "repair":
        lead = "Find the bug in the code under test (not in the tests) and fix it."
    else:
        lead = "Do the task."
    text = [lead, WHOLE_FORM]
    large = [rel for rel, form in forms.items() if form == "replace"]
    if large:
        plural = len(large) > 1
        text.append(
            REPLACE_FORM.format(
                files=", ".join(large), verb="are" if plural else "is", pronoun="them" if plural else "it"
            )
        )
    if mode == "task":
        text.append("Start with the code. After it, write one short paragraph: what you changed "
                    "and why.")
    else:
        text.append("Start with the code; explain nothing before it.")
    return "\n\n".join(text)


def reflection(trial_summary: str, output: str, forms: Mapping[str, str], output_chars: int = 2500) -> str:
    """Shown after the best failing candidate so far: what still fails, and the form to answer in."""
    large = [rel for rel, form in forms.items() if form == "replace"]
    form = (
        "Answer with SEARCH/REPLACE blocks for " + ", ".join(large) + " and whole definitions "
        "for the rest."
        if large else "Answer as before: the path, then each corrected function or class, complete."
    )
    return (
        f"That change was tried, and the tests {STILL_FAILING} ({without_timings(trial_summary)}):\n"
        f"```\n{tail(without_timings(output), output_chars)}\n```\n"
        f"Look again at what the failing tests expect, then fix the code. {form}"
    )


def fence_language(rel: str) -> str:
    return {"py": "python", "js": "javascript", "ts": "typescript", "md": "markdown",
            "toml": "toml", "json": "json", "sh": "sh"}.get(rel.rsplit(".", 1)[-1], "")


# pytest's "3 failed, 1 passed in 0.05s (0:00:00)": the time differs on every run.
_TIMING = re.compile(
    r"\b(passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected|no tests ran)"
    r" in \d+(?:\.\d+)?s(?: \(\d+:\d\d:\d\d\))?(?=\s*=*\s*$)",
    re.MULTILINE,
)


def without_timings(text: str) -> str:
    """Test output as the model sees it: without the run's duration, which tells it nothing
    and differs every run, so the next run's prompt begins as this one's did (the in-process
    runtime then reads that prompt's state from disk instead of evaluating it again)."""
    return _TIMING.sub(r"\1", text)


def tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]
