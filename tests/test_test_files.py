"""One definition of a test file, written twice, checked against one table.

`turnout.agent.testrun.is_test_file` decides what the agent never edits (`ProtectTests`, the
loop's edit filter), what it shows after the code under test and what localization leaves out;
the bench's test restore builds on it. `tools/trace_runner.py` needs the same answer to leave
the tests out of a trace, but runs as a script in the project's own Python, where turnout
cannot be imported, so it carries a copy. Both must answer every row of `TABLE` alike.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from turnout.agent.testrun import is_test_file

ROOT = Path(__file__).resolve().parent.parent


def _trace_runner() -> ModuleType:
    # Loaded from its file, the way the tests server runs it, not through the package.
    spec = importlib.util.spec_from_file_location("trace_runner", ROOT / "tools/trace_runner.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEFINITIONS: dict[str, Callable[[str], bool]] = {
    "agent.testrun": is_test_file,
    "tools/trace_runner.py": _trace_runner().is_test_file,
}

TABLE = [
    # named as pytest finds tests
    ("test_calc.py", True),
    ("src/pkg/test_calc.py", True),
    ("calc_test.py", True),
    ("test_data.json", True),
    # pytest's fixtures and hooks
    ("conftest.py", True),
    ("tests/conftest.py", True),
    ("src/pkg/conftest.py", True),
    # anything in a tests folder, helpers and data too
    ("tests/helpers.py", True),
    ("tests/fixtures/users.json", True),
    ("test/helpers.py", True),
    ("testing/util.py", True),
    ("pkg/tests/unit/factory.py", True),
    # the code under test
    ("calc.py", False),
    ("src/calc.py", False),
    ("src/contest.py", False),
    ("src/latest_test.txt", False),
    ("src/testing.py", False),
    ("src/tests.py", False),
    ("attest/calc.py", False),
    ("my_tests/calc.py", False),
    ("src/mytest_calc.py", False),
]


@pytest.mark.parametrize("definition", DEFINITIONS.values(), ids=DEFINITIONS.keys())
@pytest.mark.parametrize(("path", "expected"), TABLE)
def test_both_definitions_agree_on_every_path(
    definition: Callable[[str], bool], path: str, expected: bool
) -> None:
    assert definition(path) is expected
