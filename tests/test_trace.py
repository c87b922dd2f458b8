"""`trace_test`: what the code under test did while one failing test ran, through the real
tests server over stdio, on a small project with a wrong constant in a class."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from turnout.agent.testrun import failing_test_ids

pytestmark = pytest.mark.anyio

CODE = '''\
class Cache:
    def __init__(self, ttl_ms):
        self.ttl = ttl_ms / 100
        self.items = {}

    def put(self, key, now):
        self.items[key] = now + self.ttl

    def alive(self, key, now):
        expires = self.items[key]
        return now < expires
'''

TEST = '''\
from cache import Cache


def helper_in_the_test():
    return 42


def test_entry_expires():
    helper_in_the_test()
    cache = Cache(ttl_ms=1500)
    cache.put("k", now=0.0)
    assert not cache.alive("k", now=2.0)
'''


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trace_project")
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (root / "cache.py").write_text(CODE)
    (root / "tests").mkdir()
    (root / "tests" / "test_cache.py").write_text(TEST)
    return root


@pytest.fixture(scope="module")
async def client(project: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "turnout.tools.tests", "--root", str(project)]
    )
    async with Client(params) as connected:
        yield connected


def text_of(result: object) -> str:
    return "".join(block.text for block in result.content if block.type == "text")  # type: ignore[attr-defined]


async def test_the_trace_shows_calls_assigned_values_and_returns(client: Client) -> None:
    result = await client.call_tool("trace_test", {"test": "tests/test_cache.py::test_entry_expires"})
    trace = text_of(result)
    assert not result.is_error, trace
    lines = trace.splitlines()
    assert lines[0] == "cache.py:2 Cache.__init__(ttl_ms=1500)"
    # The wrong constant shows as the value it produced, next to the line that produced it.
    assert "  3: self.ttl = ttl_ms / 100    -> self.ttl = 15.0" in lines
    assert any(line.startswith("cache.py:9 Cache.alive(key='k', now=2.0)") for line in lines)
    assert "  10: expires = self.items[key]    -> expires = 15.0" in lines
    assert lines[-1] == "  return True"
    # The test's own code is not traced: it is the specification, not the suspect.
    assert "helper_in_the_test" not in trace and "test_cache.py" not in trace


async def test_a_test_that_runs_no_project_code_is_an_error_that_says_so(
    client: Client, project: Path
) -> None:
    (project / "tests" / "test_plain.py").write_text("def test_alone():\n    assert 1 == 2\n")
    result = await client.call_tool("trace_test", {"test": "tests/test_plain.py::test_alone"})
    assert result.is_error
    assert "the code under test did not run" in text_of(result)


async def test_an_option_in_place_of_a_test_id_is_refused(client: Client) -> None:
    result = await client.call_tool("trace_test", {"test": "--collect-only"})
    assert result.is_error
    assert "pytest node id" in text_of(result)


def test_failing_test_ids_come_from_pytest_short_summary() -> None:
    output = (
        "FAILED tests/test_a.py::test_one - AssertionError: assert 1 == 2\n"
        "FAILED tests/test_a.py::TestX::test_two[case-1]\n"
        "ERROR tests/test_b.py - ImportError\n"
        "FAILED tests/test_a.py::test_one - again\n"
        "2 failed, 1 error in 0.1s\n"
    )
    assert failing_test_ids(output) == [
        "tests/test_a.py::test_one", "tests/test_a.py::TestX::test_two[case-1]",
    ]
