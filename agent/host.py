"""The MCP host: starts tool servers over stdio, lists their tools, routes calls to them.

The agent loop is synchronous; the `mcp` client is async. The host runs one event loop in a
background thread that owns every client session for the host's whole life (anyio cancel
scopes must be exited by the task that entered them), and the loop's thread-safe futures carry
calls across.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any, Self, TextIO

from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import BaseModel, Field
from turnout.runtimes.base import ToolResult, ToolSpec
from turnout.runtimes.errors import ToolHostError


class ServerSpec(BaseModel):
    """One MCP server to start: the `mcpServers` entry shape (command, args, env, cwd)."""

    name: str
    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None


def builtin_servers(repo: Path, test_command: str | None = None) -> list[ServerSpec]:
    """turnout's own servers (files, edit, tests), confined to `repo`."""
    root = str(repo)
    tests_args = ["-m", "turnout.tools.tests", "--root", root]
    if test_command:
        tests_args += ["--test-command", test_command]
    return [
        ServerSpec(name="files", command=sys.executable, args=["-m", "turnout.tools.files", "--root", root], cwd=root),
        ServerSpec(name="edit", command=sys.executable, args=["-m", "turnout.tools.edit", "--root", root], cwd=root),
        ServerSpec(name="tests", command=sys.executable, args=tests_args, cwd=root),
    ]


class McpHost:
    """A `ToolHost` over real MCP servers. Use as a context manager."""

    def __init__(
        self,
        servers: list[ServerSpec],
        *,
        call_timeout: float = 600.0,
        start_timeout: float = 60.0,
        errlog: TextIO | None = None,
    ) -> None:
        self._servers = servers
        # Servers' stderr goes to a real file (the run's servers.log): a subprocess needs a file
        # descriptor, which sys.stderr under a test runner or a TUI may not have.
        self._errlog = errlog if errlog is not None else open(os.devnull, "w")  # noqa: SIM115
        self._call_timeout = call_timeout
        self._start_timeout = start_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-host", daemon=True)
        self._clients: dict[str, Client] = {}
        self._tools: dict[str, tuple[str, ToolSpec]] = {}  # tool name -> (server, spec)
        self._stop: asyncio.Event | None = None
        self._main: Future[None] | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        ready: Future[None] = Future()
        self._main = asyncio.run_coroutine_threadsafe(self._run(ready), self._loop)
        try:
            ready.result(timeout=self._start_timeout)
        except FutureTimeout:
            self.close()
            raise ToolHostError(
                f"MCP servers did not start within {self._start_timeout:.0f}s: "
                f"{', '.join(s.name for s in self._servers)}"
            ) from None
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _run(self, ready: Future[None]) -> None:
        self._stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                for spec in self._servers:
                    params = StdioServerParameters(
                        command=spec.command, args=spec.args, env=spec.env, cwd=spec.cwd
                    )
                    try:
                        transport = stdio_client(params, errlog=self._errlog)
                        client = await stack.enter_async_context(Client(transport))
                        listed = await client.list_tools()
                    except Exception as exc:
                        raise ToolHostError(
                            f"MCP server {spec.name!r} ({spec.command} {' '.join(spec.args)}) "
                            f"failed to start: {exc}"
                        ) from exc
                    self._clients[spec.name] = client
                    for tool in listed.tools:
                        if tool.name in self._tools:
                            other = self._tools[tool.name][0]
                            raise ToolHostError(
                                f"tool {tool.name!r} is offered by both {other!r} and {spec.name!r}; "
                                f"remove one of the servers"
                            )
                        self._tools[tool.name] = (
                            spec.name,
                            ToolSpec(
                                name=tool.name,
                                description=tool.description or "",
                                input_schema=dict(tool.input_schema),
                            ),
                        )
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    def close(self) -> None:
        if self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._main is not None:
            # A start-up failure was already raised by __enter__; at close only the shutdown matters.
            with suppress(BaseException):
                self._main.result(timeout=30)
            self._main = None
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def list_tools(self) -> list[ToolSpec]:
        return [spec for _, spec in self._tools.values()]

    def server_of(self, tool: str) -> str | None:
        found = self._tools.get(tool)
        return found[0] if found else None

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        if name not in self._tools:
            known = ", ".join(sorted(self._tools))
            return ToolResult(content=f"unknown tool {name!r}; available tools: {known}", is_error=True)
        client = self._clients[self._tools[name][0]]
        future = asyncio.run_coroutine_threadsafe(
            client.call_tool(name, arguments, read_timeout_seconds=self._call_timeout), self._loop
        )
        try:
            result = future.result(timeout=self._call_timeout + 5)
        except FutureTimeout:
            future.cancel()
            return ToolResult(
                content=f"tool {name!r} did not answer within {self._call_timeout:.0f}s", is_error=True
            )
        except Exception as exc:  # noqa: BLE001 - a protocol failure becomes a tool error the model sees
            return ToolResult(content=f"tool {name!r} failed: {exc}", is_error=True)
        text = "\n".join(
            block.text for block in result.content if getattr(block, "type", "") == "text"
        )
        return ToolResult(content=text, is_error=bool(result.is_error))
