"""MCP round trips: `read_file` over stdio, median and p99, measured side by side in one run.

    .venv/bin/python bench/mcp_roundtrip.py [--calls 300] [--json]

Paths compared, each on its own server process, all reading the same 8 KB file:

    raw client       the official `mcp` Client awaiting `files.read_file` (no turnout code)
    host             turnout's McpHost: a sync call, a thread hop into the host's event loop
    guarded host     McpHost behind the approvals and pins (GuardedHost), as `turnout chat` calls
    server-filesystem  @modelcontextprotocol/server-filesystem's `read_text_file` via McpHost
                     (skipped if `make test-servers` has not installed it)

Calls run in interleaved blocks of 20, so the shared machine's noise falls on every path alike.
Times are wall-clock per call in milliseconds; compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from turnout.agent.approvals import ApprovalPolicy, GuardedHost, ToolPins
from turnout.agent.host import McpHost, ServerSpec, builtin_servers
from turnout.runtimes.base import ToolResult

BLOCK = 20
NPM_FILESYSTEM = (
    Path(__file__).resolve().parents[1] / "build" / "npm" / "node_modules" / ".bin" / "mcp-server-filesystem"
)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class RawClient:
    """The official client on its own loop thread; each block is timed inside the loop."""

    def __init__(self, root: Path) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._params = StdioServerParameters(
            command=sys.executable, args=["-m", "turnout.tools.files", "--root", str(root)]
        )
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._client: Client | None = None
        asyncio.run_coroutine_threadsafe(self._hold(), self._loop)
        self._ready.wait(60)

    async def _hold(self) -> None:
        self._stop = asyncio.Event()
        async with Client(self._params) as client:
            self._client = client
            self._ready.set()
            await self._stop.wait()

    async def _block(self, count: int) -> list[float]:
        assert self._client is not None
        times = []
        for _ in range(count):
            started = time.perf_counter()
            result = await self._client.call_tool("read_file", {"path": "sample.py"})
            times.append(time.perf_counter() - started)
            assert not result.is_error
        return times

    def block(self, count: int) -> list[float]:
        return asyncio.run_coroutine_threadsafe(self._block(count), self._loop).result(120)

    def close(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        time.sleep(1)
        self._loop.call_soon_threadsafe(self._loop.stop)


def timed_block(call: Callable[[], ToolResult], count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
        assert not result.is_error, result.content
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per path (default 300)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "repo"
        root.mkdir()
        line = "def function_{0}(value):\n    return value * {0}  # a line of ordinary code\n"
        (root / "sample.py").write_text("".join(line.format(i) for i in range(100)), encoding="utf-8")
        size = (root / "sample.py").stat().st_size

        servers: list[ServerSpec] = [builtin_servers(root)[0]]
        has_npm = NPM_FILESYSTEM.exists()
        if has_npm:
            servers.append(ServerSpec(name="fs", command=str(NPM_FILESYSTEM), args=[str(root)]))
        raw = RawClient(root)
        with McpHost(servers) as host, McpHost([builtin_servers(root)[0]]) as guarded_host:
            guarded = GuardedHost(
                guarded_host,
                ApprovalPolicy(mode="ask"),
                pins=ToolPins(Path(scratch) / "pins.json"),
            )
            guarded.list_tools()  # pin the definitions, as a chat session does first
            paths: dict[str, Callable[[int], list[float]]] = {
                "raw client": raw.block,
                "host": lambda n: timed_block(
                    # Both servers offer read_file, so the host names ours files__read_file.
                    lambda: host.call_tool("files__read_file", {"path": "sample.py"}), n
                ),
                "guarded host": lambda n: timed_block(
                    lambda: guarded.call_tool("read_file", {"path": "sample.py"}), n
                ),
            }
            if has_npm:
                target = str(root.resolve() / "sample.py")
                paths["server-filesystem"] = lambda n: timed_block(
                    lambda: host.call_tool("fs__read_text_file", {"path": target}), n
                )
            for path in paths.values():  # warm up: imports, caches, first-call costs
                path(5)
            samples: dict[str, list[float]] = {name: [] for name in paths}
            rounds = max(1, args.calls // BLOCK)
            for _ in range(rounds):
                for name, path in paths.items():
                    samples[name].extend(path(BLOCK))
        raw.close()

    base = statistics.median(samples["raw client"])
    rows = {
        name: {
            "calls": len(times),
            "median_ms": round(statistics.median(times) * 1000, 3),
            "p99_ms": round(percentile(times, 0.99) * 1000, 3),
            "median_vs_raw": round(statistics.median(times) / base, 2),
        }
        for name, times in samples.items()
    }
    if args.json:
        print(json.dumps({"file_bytes": size, "paths": rows}, indent=2))
        return
    print(f"read_file of a {size} B file over stdio, {rounds * BLOCK} calls per path, interleaved")
    print(f"{'path':<20} {'median ms':>10} {'p99 ms':>10} {'median / raw':>13}")
    for name, row in rows.items():
        print(f"{name:<20} {row['median_ms']:>10.3f} {row['p99_ms']:>10.3f} {row['median_vs_raw']:>13.2f}")


if __name__ == "__main__":
    main()
