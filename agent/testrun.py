"""Reading the tests server's answer, and finding the source files a failure points at."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel


class TestOutcome(BaseModel):
    """One run of the test command, as the `run_tests` tool reported it."""

    __test__ = False  # not a pytest test class, despite the name

    exit_code: int
    timed_out: bool = False
    summary: str = ""
    output: str = ""

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def parse_test_result(text: str) -> TestOutcome:
    """Parse the `run_tests` tool's text: `exit_code:`, `timed_out:`, `summary:` then output."""
    header, _, output = text.partition("--- output ---")
    fields: dict[str, str] = {}
    for line in header.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        exit_code = int(fields.get("exit_code", ""))
    except ValueError:
        exit_code = -1
    return TestOutcome(
        exit_code=exit_code,
        timed_out=fields.get("timed_out", "false").lower() == "true",
        summary=fields.get("summary", ""),
        output=output.strip("\n"),
    )


_PATH_IN_TRACEBACK = re.compile(r"(?m)^\s*(?:File \")?([\w./\\-]+\.py)(?:\", line |:)(\d+)")


def files_named_in(output: str, repo: Path) -> list[str]:
    """Repository files a test failure names, code under test before the tests themselves."""
    seen: list[str] = []
    root = repo.resolve()
    for match in _PATH_IN_TRACEBACK.finditer(output):
        candidate = (root / match.group(1)).resolve()
        if not candidate.is_file() or not candidate.is_relative_to(root):
            continue
        rel = candidate.relative_to(root).as_posix()
        if rel not in seen:
            seen.append(rel)
    return sorted(seen, key=lambda p: (is_test_file(p), seen.index(p)))


TEST_FOLDERS = frozenset({"tests", "test", "testing"})


def is_test_file(rel: str) -> bool:
    """Whether a repository-relative path belongs to the tests: a file named as pytest finds
    tests (`test_*`, `*_test.py`), a `conftest.py`, or anything in a folder named tests, test
    or testing. The tests are the specification: the agent never edits them and shows them after
    the code under test. `tools/trace_runner.py` holds the same definition (it runs in the
    project's own Python, where turnout cannot be imported); tests/test_test_files.py checks
    that the two agree."""
    parts = rel.split("/")
    name = parts[-1]
    return (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            or any(part in TEST_FOLDERS for part in parts[:-1]))


_FAILED_TEST = re.compile(r"(?m)^FAILED\s+(\S+?\.py::\S+?)(?:\s+-\s|\s*$)")


_FAILING_FILE = re.compile(r"(?m)^(?:FAILED|ERROR)\s+(\S+?\.py)(?:::|\s|$)")


def failing_files(output: str) -> list[str]:
    """The test files with a failed test or an error, from pytest's short summary
    (`FAILED path::name`, `ERROR path - ImportError ...`)."""
    return list(dict.fromkeys(_FAILING_FILE.findall(output)))


def failing_test_ids(output: str) -> list[str]:
    """pytest node ids of the failed tests, from its short summary (`FAILED path::name - ...`)."""
    return list(dict.fromkeys(_FAILED_TEST.findall(output)))
