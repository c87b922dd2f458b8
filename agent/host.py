"""The MCP host: starts tool servers, lists their tools under one namespace, routes calls to them.

Servers come from the usual `mcpServers` JSON (`.mcp.json`, Claude Desktop's format): a
`command` with `args`, `env` and `cwd` runs over stdio; a `url` is streamable HTTP. Every tool is
exposed as `<server>__<tool>`, except that turnout's own servers (`bare_names=True`) keep their
plain names while no other server offers the same one, so a small model sees `read_file`, not
`files__read_file`. A call by the plain name of a tool that only one server has is accepted too.

Each call has a timeout (the server's own `timeout`, else the host's). While a call runs, the
server is pinged every few seconds: one that stops answering pings (alive, but no longer
replying) is taken for dead at once rather than after the call's timeout. A server whose
connection dies, or that does not answer in time, is stopped and started again (a bounded number of times);
a call that finds the connection already closed is sent to the restarted server, since it never
reached the old one. Every server is offered the host's roots (MCP `roots/list`).

The agent loop is synchronous; the `mcp` client is async. The host runs one event loop in a
background thread. Each server is owned by one task on that loop for its whole life, restarts
included (anyio cancel scopes must be exited by the task that entered them); the loop's
thread-safe futures carry calls across.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import os
import re
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any, Self, TextIO

import mcp_types
import structlog
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field, ValidationError, model_validator
from turnout.runtimes.base import ToolResult, ToolSpec
from turnout.runtimes.errors import ToolHostError, UsageError

# What a model sees of one tool result: enough for a file or a test log, not a runaway server.
MAX_RESULT_CHARS = 100_000
# Model-facing tool names: what OpenAI-style APIs accept (^[a-zA-Z0-9_-]{1,64}$).
MAX_TOOL_NAME = 64
NAMESPACE_SEPARATOR = "__"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ServerSpec(BaseModel):
    """One MCP server: an `mcpServers` entry (command, args, env, cwd; or url, headers)."""

    name: str = Field(description="the key in mcpServers; prefixes the server's tool names")
    command: str | None = Field(default=None, description="executable of a stdio server")
    args: list[str] = Field(default_factory=list, description="its arguments")
    env: dict[str, str] | None = Field(
        default=None, description="extra environment; the rest is only PATH, HOME and the like"
    )
    cwd: str | None = Field(default=None, description="working directory of a stdio server")
    url: str | None = Field(default=None, description="endpoint of a streamable HTTP server")
    headers: dict[str, str] | None = Field(default=None, description="HTTP headers, e.g. auth")
    timeout: float | None = Field(default=None, gt=0, description="seconds per call; host default if unset")
    bare_names: bool = Field(
        default=False, description="expose tools without the server prefix when unambiguous"
    )
    trusted: bool = Field(
        default=False, description="turnout's own server: its tool annotations are believed"
    )

    @model_validator(mode="after")
    def _one_transport(self) -> ServerSpec:
        if bool(self.command) == bool(self.url):
            raise ValueError(
                f"server {self.name!r} needs exactly one of 'command' (stdio) or 'url' "
                "(streamable HTTP)"
            )
        return self

    def describe(self) -> str:
        return self.url or " ".join([self.command or "", *self.args]).strip()


class ToolInfo(BaseModel):
    """A tool as the host knows it: where it lives, and its definition as the server gave it."""

    name: str  # the name the model sees
    server: str
    tool: str  # the server's own name for it
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    annotations: dict[str, Any] = Field(default_factory=dict)
    trusted: bool = False  # from turnout's own servers
    source: str = ""  # the server's command line or URL: which server a pin belongs to

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, input_schema=self.input_schema)

    def definition(self) -> dict[str, Any]:
        """What a tool-definition pin covers: everything the model or the policy relies on."""
        return {
            "tool": self.tool,
            "description": self.description,
            "input_schema": self.input_schema,
            "annotations": self.annotations,
        }

    def definition_hash(self) -> str:
        canonical = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# ----- configuration ---------------------------------------------------------------------------


def builtin_servers(
    repo: Path, test_command: str | None = None, *, git: bool = False
) -> list[ServerSpec]:
    """turnout's own servers (files, edit, tests, and git if asked), confined to `repo`."""
    root = str(repo)
    tests_args = ["-m", "turnout.tools.tests", "--root", root]
    if test_command:
        tests_args += ["--test-command", test_command]

    servers = [
        own_server("files", ["-m", "turnout.tools.files", "--root", root], repo),
        own_server("edit", ["-m", "turnout.tools.edit", "--root", root], repo),
        own_server("tests", tests_args, repo),
    ]
    if git:
        servers.append(own_server("git", ["-m", "turnout.tools.git", "--root", root], repo))
    return servers


def own_server(name: str, args: list[str], root: Path) -> ServerSpec:
    """One of turnout's own servers, run by this Python. A server's environment is bare, so a
    PYTHONPATH that chose this process's turnout (a source checkout) is handed on: the servers
    run the same code as the host that starts them."""
    path = os.environ.get("PYTHONPATH")
    return ServerSpec(
        name=name, command=sys.executable, args=args, cwd=str(root), bare_names=True,
        trusted=True, env={"PYTHONPATH": path} if path else None,
    )


def load_mcp_config(
    path: Path, environ: dict[str, str] | None = None, warn: Callable[[str], None] | None = None
) -> list[ServerSpec]:
    """The servers of an `mcpServers` JSON file (`.mcp.json`, claude_desktop_config.json).

    `${VAR}` and `${VAR:-default}` in command, args, env, url and headers are read from the
    environment; a relative `cwd` is relative to the file. Entries with `"disabled": true` are
    skipped. The transport follows from the entry: `command` is stdio, `url` streamable HTTP.
    An entry on the old SSE transport, which the host does not speak, is skipped and `warn` (by
    default a warning in the log, which the command line writes to stderr) says so: the file's
    other servers still work.
    """
    warn = warn or (lambda message: structlog.get_logger("turnout.host").warning(message))
    environ = dict(os.environ) if environ is None else environ
    data = read_json_config(path)
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise UsageError(
            f'the MCP config {path} has no "mcpServers" object; write '
            '{"mcpServers": {"name": {"command": "...", "args": [...]}}}'
        )
    specs: list[ServerSpec] = []
    for name, entry in servers.items():
        if not isinstance(entry, dict):
            raise UsageError(f"{path}: mcpServers.{name} must be an object")
        if entry.get("disabled") is True:
            continue
        kind = entry.get("type") or entry.get("transport")
        if kind in ("sse",):
            warn(
                f"{path}: skipped mcpServers.{name}: it uses the old SSE transport, which turnout "
                "does not speak; point 'url' at the server's streamable HTTP endpoint (usually "
                "/mcp) and drop the type"
            )
            continue
        for key in entry:
            if key not in SPEC_KEYS and key not in OTHER_CLIENTS_KEYS:
                near = difflib.get_close_matches(key, SPEC_KEYS, n=1, cutoff=0.7)
                if near:  # a misspelling would otherwise drop the setting without a word
                    raise UsageError(
                        f"{path}: mcpServers.{name} has the unknown key {key!r}; did you mean "
                        f"{near[0]!r}? Rename it"
                    )
        fields = {
            key: _expand(entry[key], environ, f"{path}: mcpServers.{name}.{key}")
            for key in SPEC_KEYS
            if key in entry
        }
        if isinstance(fields.get("cwd"), str) and not Path(fields["cwd"]).is_absolute():
            fields["cwd"] = str((path.parent / fields["cwd"]).resolve())
        if not _SERVER_NAME.fullmatch(name):
            raise UsageError(
                f"{path}: server name {name!r} may use only letters, digits, '_' and '-' "
                "(it prefixes tool names)"
            )
        try:
            specs.append(ServerSpec(name=name, **fields))
        except ValidationError as exc:
            problems = "; ".join(error["msg"] for error in exc.errors())
            raise UsageError(f"{path}: mcpServers.{name}: {problems}") from None
    return specs


_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
# The keys of an mcpServers entry that make a ServerSpec.
SPEC_KEYS = ("command", "args", "env", "cwd", "url", "headers", "timeout")
# Keys other clients write (Claude Desktop, Cursor, VS Code, Cline), read or left alone here;
# any other key close to one of SPEC_KEYS is taken for a misspelling of it.
OTHER_CLIENTS_KEYS = frozenset(
    {"type", "transport", "transportType", "disabled", "description", "alwaysAllow",
     "autoApprove", "envFile", "enabled", "name"}
)


def read_json_config(path: Path) -> Any:
    """A JSON config file's data; a UsageError that names the file, the place and the fix
    when it cannot be read, is not UTF-8 or is not JSON."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the MCP config {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UsageError(
            f"the MCP config {path} is not UTF-8: byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start} (line {line}, column {column}); save the file as UTF-8"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the MCP config {path} is not valid JSON: {exc}") from None


def _expand(value: Any, environ: dict[str, str], where: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            variable, default = match.group(1), match.group(2)
            if variable in environ:
                return environ[variable]
            if default is not None:
                return default
            raise UsageError(
                f"{where} uses ${{{variable}}}, which is not set; set it or write "
                f"${{{variable}:-default}}"
            )

        return _ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, list):
        return [_expand(item, environ, where) for item in value]
    if isinstance(value, dict):
        return {key: _expand(item, environ, where) for key, item in value.items()}
    return value


def exposed_name(server: str, tool: str) -> str:
    """`server__tool`, made safe for model APIs; a hash keeps long names distinct."""
    name = _UNSAFE_NAME_CHARS.sub("_", f"{server}{NAMESPACE_SEPARATOR}{tool}")
    if len(name) <= MAX_TOOL_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_TOOL_NAME - 9]}_{digest}"


# ----- the host ----------------------------------------------------------------------------


class _Server:
    """One configured server and its current connection, owned by one task on the host loop."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.client: Client | None = None
        self.tools: list[mcp_types.Tool] = []
        self.error: str | None = None  # why the server is not connected, when it is not
        self.ready = asyncio.Event()  # set once a start attempt has finished, well or not
        self.wake = asyncio.Event()  # set to make the owner stop this connection
        self.restarts = 0
        self.attempts = 0  # start attempts finished, well or not
        self.gave_up = False  # restarts used up: the server stays down
        self.task: asyncio.Task[None] | None = None


class McpHost:
    """A `ToolHost` over real MCP servers. Use as a context manager."""

    def __init__(
        self,
        servers: list[ServerSpec],
        *,
        call_timeout: float = 600.0,
        start_timeout: float = 60.0,
        errlog: TextIO | None = None,
        roots: list[Path] | None = None,
        strict: bool = True,
        max_restarts: int = 3,
        ping_every: float = 2.0,
        ping_timeout: float = 10.0,
    ) -> None:
        names = [spec.name for spec in servers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise UsageError(f"MCP server names must be unique; repeated: {', '.join(duplicates)}")
        self._servers = {spec.name: _Server(spec) for spec in servers}
        # Servers' stderr goes to a real file (the run's servers.log): a subprocess needs a file
        # descriptor, which sys.stderr under a test runner or a TUI may not have.
        self._errlog = errlog if errlog is not None else open(os.devnull, "w")  # noqa: SIM115
        self._owns_errlog = errlog is None
        self._call_timeout = call_timeout
        self._start_timeout = start_timeout
        self._roots = [path.resolve() for path in roots or []]
        self._strict = strict
        self._max_restarts = max_restarts
        # While a call runs, the server is pinged this often; no answer in ping_timeout means
        # it is dead even if its process is not (see _watch).
        self._ping_every = ping_every
        self._ping_timeout = ping_timeout
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-host", daemon=True)
        self._tools: dict[str, ToolInfo] = {}
        self._lock = threading.Lock()

    # ----- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            for server in self._servers.values():
                self._submit(self._start_owner(server)).result()
            waiting = self._submit(self._wait_all_ready())
            try:
                waiting.result(timeout=self._start_timeout + 10)
            except FutureTimeout:
                waiting.cancel()
            failed = self.failed_servers()
            if failed and self._strict:
                raise ToolHostError(
                    "MCP servers failed to start: "
                    + "; ".join(f"{name}: {why}" for name, why in failed.items())
                )
            self._rebuild_names()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._closing = True
        with suppress(BaseException):
            self._submit(self._stop_all()).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if self._owns_errlog:
            self._errlog.close()

    # ----- the ToolHost protocol -------------------------------------------------------------

    def list_tools(self) -> list[ToolSpec]:
        with self._lock:
            return [info.spec() for info in self._tools.values()]

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        info = self.tool_info(name)
        if info is None:
            with self._lock:
                known = ", ".join(sorted(self._tools))
            return ToolResult(content=f"unknown tool {name!r}; available tools: {known}", is_error=True)
        server = self._servers[info.server]
        timeout = server.spec.timeout or self._call_timeout
        future = self._submit(self._call(server, info, arguments, timeout))
        try:
            # The call times itself out inside the loop; this bound only covers a wedged loop.
            return future.result(timeout=timeout + self._start_timeout + 30)
        except FutureTimeout:
            future.cancel()
            return ToolResult(content=f"tool {name!r} did not answer within {timeout:g}s", is_error=True)

    # ----- more of what a host knows -----------------------------------------------------------

    def tools(self) -> list[ToolInfo]:
        with self._lock:
            return list(self._tools.values())

    def tool_info(self, name: str) -> ToolInfo | None:
        """The tool a model means by `name`: its exposed name, `server__tool`, or a plain name
        that only one server offers."""
        with self._lock:
            if name in self._tools:
                return self._tools[name]
            by_tool = [info for info in self._tools.values() if info.tool == name]
            by_qualified = [
                info for info in self._tools.values() if exposed_name(info.server, info.tool) == name
            ]
        matches = by_qualified or by_tool
        return matches[0] if len(matches) == 1 else None

    def failed_servers(self) -> dict[str, str]:
        """Servers that are not connected now, with the reason."""
        return {
            name: server.error or "not started"
            for name, server in self._servers.items()
            if server.client is None or server.gave_up
        }

    def restarts(self, server: str) -> int:
        return self._servers[server].restarts

    def connected(self, server: str) -> bool:
        """Whether the host holds an open connection to `server` (EOF seen = not connected)."""
        client = self._servers[server].client
        return client is not None and not _connection_closed(client)

    def refresh_tools(self) -> list[ToolInfo]:
        """List every connected server's tools again (a server may change them at any time)."""
        self._submit(self._relist_all()).result(timeout=self._start_timeout + 10)
        self._rebuild_names()
        return self.tools()

    # ----- inside the loop ---------------------------------------------------------------------

    def _submit(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _start_owner(self, server: _Server) -> None:
        server.task = asyncio.create_task(self._own(server), name=f"mcp-server-{server.spec.name}")

    async def _wait_all_ready(self) -> None:
        await asyncio.gather(*(server.ready.wait() for server in self._servers.values()))

    async def _stop_all(self) -> None:
        for server in self._servers.values():
            server.wake.set()
        tasks = [server.task for server in self._servers.values() if server.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=20)
            for task in pending:
                task.cancel()

    async def _own(self, server: _Server) -> None:
        """Start the server, hold the connection until woken, and start it again if asked."""
        while not self._closing and not server.gave_up:
            server.wake.clear()
            stack = AsyncExitStack()
            try:
                # The SDK's handshake has no timeout of its own: a server that never answers
                # would hold the start forever.
                async with asyncio.timeout(self._start_timeout):
                    transport = await self._connect(server.spec, stack)
                    client = await stack.enter_async_context(transport)
                    server.tools = await _list_all_tools(client)
            except TimeoutError:
                server.error = (
                    f"failed to start ({server.spec.describe()}): no answer to the MCP "
                    f"handshake within {self._start_timeout:g}s"
                )
                await _close_quietly(stack)
                server.attempts += 1
                server.ready.set()
                await server.wake.wait()
                continue
            except Exception as exc:  # noqa: BLE001 - any start failure is reported, not raised
                server.error = _start_failure(server.spec, exc)
                await _close_quietly(stack)
                server.attempts += 1
                server.ready.set()
                await server.wake.wait()
                continue
            server.client, server.error = client, None
            server.attempts += 1
            self._rebuild_names()
            server.ready.set()
            try:
                await server.wake.wait()
            finally:
                server.client = None
                server.ready.clear()
                await _close_quietly(stack)

    async def _connect(self, spec: ServerSpec, stack: AsyncExitStack) -> Client:
        if spec.url:
            http = create_mcp_http_client(headers=spec.headers)
            await stack.enter_async_context(http)
            transport: Any = streamable_http_client(spec.url, http_client=http)
        else:
            assert spec.command is not None
            params = StdioServerParameters(
                command=spec.command, args=spec.args, env=spec.env, cwd=spec.cwd
            )
            transport = stdio_client(params, errlog=self._errlog)
        return Client(
            transport,
            # Bounds the handshake and listings; each call passes its own timeout.
            read_timeout_seconds=self._start_timeout,
            list_roots_callback=self._list_roots if self._roots else None,
            client_info=mcp_types.Implementation(name="turnout", version="0.1.0"),
            # tools/list must reach the server each time: a changed definition has to be seen.
            cache=None,
        )

    async def _list_roots(self, context: Any) -> mcp_types.ListRootsResult:
        return mcp_types.ListRootsResult(
            roots=[mcp_types.Root(uri=path.as_uri(), name=path.name) for path in self._roots]
        )

    async def _relist_all(self) -> None:
        for server in self._servers.values():
            if server.client is not None:
                with suppress(Exception):
                    server.tools = await _list_all_tools(server.client)

    async def _restart(self, server: _Server, why: str) -> bool:
        """Stop the server's connection and start it again; False once restarts are used up."""
        if server.gave_up:
            return False
        if server.restarts >= self._max_restarts:
            server.gave_up = True
            server.error = f"{why}; not restarted again after {server.restarts} restarts"
            server.wake.set()  # release the broken connection and its process
            return False
        server.restarts += 1
        attempts = server.attempts
        server.ready.clear()
        server.wake.set()
        deadline = self._loop.time() + self._start_timeout + 10
        # Stopping a hung server takes a few seconds (stdin closed, then SIGTERM, then SIGKILL).
        while server.attempts == attempts and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        return server.client is not None

    async def _call(
        self, server: _Server, info: ToolInfo, arguments: dict[str, Any], timeout: float
    ) -> ToolResult:
        name = info.name
        if server.client is None and server.error is None:
            with suppress(TimeoutError):
                await asyncio.wait_for(server.ready.wait(), self._start_timeout)
        client = server.client
        # The connection died while idle (the server crashed between calls): the request has
        # not been sent, so it is safe to restart first and send it to the new server.
        if client is None or _connection_closed(client):
            if not await self._restart(server, server.error or "its connection closed"):
                return ToolResult(
                    content=f"tool {name!r} is unavailable: server {server.spec.name!r} is down: "
                    f"{server.error}",
                    is_error=True,
                )
            client = server.client
            assert client is not None
        call = asyncio.ensure_future(
            client.call_tool(info.tool, arguments, read_timeout_seconds=timeout)
        )
        silent = await self._watch(client, call)
        if silent is not None:
            call.cancel()
            with suppress(BaseException):
                await call
            restarted = await self._restart(server, f"it stopped answering during {info.tool!r}")
            state = "was restarted" if restarted else "could not be restarted"
            return ToolResult(
                content=f"tool {name!r} failed: server {server.spec.name!r} stopped answering "
                f"during the call ({silent}) and {state}; the call may or may not have taken "
                "effect",
                is_error=True,
            )
        try:
            result = call.result()
        except MCPError as exc:
            if exc.code == mcp_types.REQUEST_TIMEOUT:
                await self._restart(server, f"a call to {info.tool!r} timed out")
                return ToolResult(
                    content=f"tool {name!r} did not answer within {timeout:g}s; server "
                    f"{server.spec.name!r} was restarted, so any work it was doing has stopped",
                    is_error=True,
                )
            if exc.code == mcp_types.CONNECTION_CLOSED or _connection_closed(client):
                restarted = await self._restart(server, f"it crashed during {info.tool!r}")
                state = "was restarted" if restarted else "could not be restarted"
                return ToolResult(
                    content=f"tool {name!r} failed: server {server.spec.name!r} crashed during "
                    f"the call and {state}; the call may or may not have taken effect",
                    is_error=True,
                )
            return ToolResult(content=f"tool {name!r} failed: {exc}", is_error=True)
        except Exception as exc:  # noqa: BLE001 - a protocol failure becomes a tool error the model sees
            return ToolResult(content=f"tool {name!r} failed: {type(exc).__name__}: {exc}", is_error=True)
        return ToolResult(content=render_content(result), is_error=bool(result.is_error))

    async def _watch(self, client: Client, call: asyncio.Future[Any]) -> str | None:
        """Wait for `call`, pinging the server every `ping_every` seconds while it runs.

        None once the call has finished (well or not); else why the server is taken for dead:
        a server whose process lives on but whose replies have stopped (its writer died on a
        reply it could not serialise, or its event loop is wedged) answers nothing, and
        without the ping the call would wait out its whole timeout. A process that exits is
        seen sooner, as the end of its pipe.
        """
        while True:
            done, _ = await asyncio.wait({call}, timeout=self._ping_every)
            if done:
                return None
            ping = asyncio.ensure_future(
                client.session.send_request(
                    mcp_types.PingRequest(params=mcp_types.RequestParams()),
                    mcp_types.EmptyResult,
                    request_read_timeout_seconds=self._ping_timeout,
                )
            )
            await asyncio.wait({call, ping}, return_when=asyncio.FIRST_COMPLETED)
            if call.done():
                ping.cancel()
                with suppress(BaseException):
                    await ping
                return None
            error = ping.exception()
            if isinstance(error, MCPError) and error.code == mcp_types.REQUEST_TIMEOUT:
                return f"no answer to a ping within {self._ping_timeout:g}s"
            if isinstance(error, MCPError):
                continue  # an error reply is still a reply: the server is alive and answering
            if error is not None:
                # The connection closed under the ping: the call sees the same end next.
                done, _ = await asyncio.wait({call}, timeout=self._ping_timeout)
                return None if done else f"the ping failed: {error}"

    # ----- names -------------------------------------------------------------------------------

    def _rebuild_names(self) -> None:
        plain_count: dict[str, int] = {}
        for server in self._servers.values():
            for tool in server.tools:
                plain_count[tool.name] = plain_count.get(tool.name, 0) + 1
        tools: dict[str, ToolInfo] = {}
        for server in self._servers.values():
            for tool in server.tools:
                bare = server.spec.bare_names and plain_count[tool.name] == 1
                bare = bare and _UNSAFE_NAME_CHARS.search(tool.name) is None
                name = tool.name if bare else exposed_name(server.spec.name, tool.name)
                annotations = (
                    tool.annotations.model_dump(exclude_none=True) if tool.annotations else {}
                )
                tools[name] = ToolInfo(
                    name=name,
                    server=server.spec.name,
                    tool=tool.name,
                    description=tool.description or "",
                    input_schema=dict(tool.input_schema),
                    annotations=annotations,
                    trusted=server.spec.trusted,
                    source=server.spec.describe(),
                )
        with self._lock:
            self._tools = tools


async def _list_all_tools(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(100):  # bounded: a server whose cursor never ends must not hang the host
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


async def _close_quietly(stack: AsyncExitStack) -> None:
    # A connection that already broke may raise again on the way out; it is gone either way.
    with suppress(Exception):
        await stack.aclose()


def _connection_closed(client: Client) -> bool:
    # The SDK keeps no public "closed" flag; its dispatcher sets `_closed` at EOF. Reading it
    # defensively costs nothing when a future SDK renames it: the call then fails and restarts.
    dispatcher = getattr(client.session, "_dispatcher", None)
    return bool(getattr(dispatcher, "_closed", False))


def _start_failure(spec: ServerSpec, exc: BaseException) -> str:
    details: list[str] = []
    for leaf in _leaves(exc):
        if isinstance(leaf, FileNotFoundError):
            detail = f"command not found: {spec.command}; install it or fix 'command'"
        elif isinstance(leaf, MCPError) and leaf.code == mcp_types.CONNECTION_CLOSED:
            detail = (
                "it closed the connection before answering the MCP handshake (it exited at "
                "once, or does not speak MCP on stdio); run the command in a terminal to see its "
                "error"
            )
            if spec.url:
                detail = "the server closed the connection before answering the MCP handshake"
        else:
            detail = str(leaf) or type(leaf).__name__
        if detail not in details:
            details.append(detail)
    return f"failed to start ({spec.describe()}): {'; '.join(details)}"


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside nested exception groups (anyio wraps each task's failure)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def render_content(result: mcp_types.CallToolResult) -> str:
    """A tool result as the text a model reads: text blocks, then placeholders for the rest."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)  # type: ignore[union-attr]
        elif kind in ("image", "audio"):
            size = len(getattr(block, "data", "") or "") * 3 // 4
            parts.append(f"[{kind} {getattr(block, 'mime_type', '')}, about {size} bytes, not shown]")
        elif kind == "resource":
            resource = block.resource  # type: ignore[union-attr]
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {resource.uri}, binary, not shown]")
        elif kind == "resource_link":
            parts.append(f"[resource link {getattr(block, 'uri', '')}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts)
    if len(text) > MAX_RESULT_CHARS:
        cut = len(text) - MAX_RESULT_CHARS
        text = text[:MAX_RESULT_CHARS] + f"\n... ({cut} more characters not shown)"
    return text
