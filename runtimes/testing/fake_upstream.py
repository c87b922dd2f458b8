"""A fake cloud provider on a local port: part of the product, for testing runtimes and policies.

Provides `FakeUpstream`, a real HTTP server (stdlib, in a thread, on 127.0.0.1) that answers
OpenAI chat-completions (`/v1/chat/completions`) and Anthropic messages (`/v1/messages`) requests
from a script of `Scripted` replies, and records every request it receives (path, headers, body,
bytes). Faults are injected at the transport level, where real ones happen: an error status with
`Retry-After`, a reply held back past the client's timeout, a stream cut in the middle (the socket
closed mid chunked body), an error event inside a 200 stream. The payload builders
(`openai_completion`, `openai_stream`, `anthropic_message`, `anthropic_stream`, `*_error`) write
the providers' real wire shapes, tool calls included.

    script = [Scripted.error(429, retry_after="1"), Scripted.json(openai_completion("hi"))]
    with FakeUpstream(script) as up:
        config = OpenAIConfig(model="gpt-4.1-mini", base_url=up.url + "/v1", stream=False)
        model = OpenAIChatModel(config, api_key="sk-test")  # runtimes/remote/openai_rt.py
        assert model.chat(ChatRequest(messages=[Message(role="user", content="hi")])).text == "hi"
        assert len(up.requests) == 2
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from pydantic import BaseModel, Field

__all__ = [
    "FakeUpstream",
    "RecordedRequest",
    "Scripted",
    "anthropic_error",
    "anthropic_message",
    "anthropic_stream",
    "openai_completion",
    "openai_error",
    "openai_stream",
]


class Scripted(BaseModel):
    """One reply of the fake server, and the fault to inject while sending it."""

    status: int = 200
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None  # a JSON reply
    events: list[str] | None = None  # SSE frames, sent one chunk each
    cut_after_events: int | None = None  # close the socket after this many frames (no end)
    delay_s: float = 0.0  # hold the reply back this long before the status line
    stall_after_events: int | None = None  # stop sending after this many frames, keep it open
    stall_s: float = 0.0

    @classmethod
    def json(cls, body: Any, status: int = 200, **headers: str) -> Scripted:
        return cls(status=status, body=body, headers=dict(headers))

    @classmethod
    def sse(cls, events: list[str], **fault: Any) -> Scripted:
        return cls(events=events, **fault)

    @classmethod
    def error(cls, status: int, body: Any = None, retry_after: str | None = None) -> Scripted:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        return cls(
            status=status, body=body if body is not None else openai_error(status), headers=headers
        )


class RecordedRequest(BaseModel):
    path: str
    headers: dict[str, str]
    body: Any
    size: int  # bytes of the request body


ScriptSource = list[Scripted] | Callable[[RecordedRequest], Scripted]


class FakeUpstream:
    """A local HTTP server answering from a script; `requests` holds what reached it."""

    def __init__(self, script: ScriptSource) -> None:
        self._script = script
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self._connections: list[socket.socket] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return sum(request.size for request in self.requests)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        # Clients keep connections alive in their pools; close them so no handler thread
        # outlives the server waiting for a next request that will never come.
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client

    def _next(self, request: RecordedRequest) -> Scripted:
        with self._lock:
            self.requests.append(request)
            if callable(self._script):
                return self._script(request)
            if not self._script:
                return Scripted.error(500, openai_error(500, "the fake's script is exhausted"))
            return self._script.pop(0)


def _handler_for(upstream: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with upstream._lock:
                upstream._connections.append(self.connection)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read `requests`, not stderr

        def do_GET(self) -> None:
            self._send_json(
                200, {"object": "list", "data": [{"id": "fake", "object": "model"}]}, {}
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            recorded = RecordedRequest(
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                size=len(raw),
            )
            reply = upstream._next(recorded)
            try:
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.events is not None:
                    self._send_events(reply)
                else:
                    self._send_json(reply.status, reply.body, reply.headers)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (its timeout): what a timeout test wants

        def _send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_events(self, reply: Scripted) -> None:
            self.send_response(reply.status)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            events = reply.events or []
            for index, frame in enumerate(events):
                if reply.cut_after_events is not None and index >= reply.cut_after_events:
                    # No terminating chunk: the client sees the body end in the middle.
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if reply.stall_after_events is not None and index >= reply.stall_after_events:
                    self.wfile.flush()
                    time.sleep(reply.stall_s)
                    self.close_connection = True
                    return
                data = frame.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler


# ---------------------------------------------------------------------------------------------
# OpenAI chat-completions wire shapes

_CREATED = 1764158400
_OPENAI_MODEL = "gpt-4.1-mini-2025-04-14"


def _openai_usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_completion(
    text: str | None = None,
    tool_calls: list[tuple[str, str, str]] | None = None,
    usage: tuple[int, int] = (82, 17),
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A chat.completion body; `tool_calls` as (id, name, arguments JSON string)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in tool_calls
        ]
    return {
        "id": "chatcmpl-CXf3k2ZqV9n1yTqL0mFJ8s7aWbH4e",
        "object": "chat.completion",
        "created": _CREATED,
        "model": _OPENAI_MODEL,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": _openai_usage(*usage),
        "service_tier": "default",
        "system_fingerprint": "fp_6d7dcc9a98",
    }


def openai_stream(
    text: str = "",
    tool_calls: list[tuple[str, str, str]] | None = None,
    usage: tuple[int, int] | None = (82, 17),
    finish_reason: str | None = None,
    pieces: int = 3,
) -> list[str]:
    """chat.completion.chunk SSE frames as OpenAI streams them with include_usage, [DONE] last."""
    base = {
        "id": "chatcmpl-CXf3k2ZqV9n1yTqL0mFJ8s7aWbH4e",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": _OPENAI_MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_6d7dcc9a98",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body: dict[str, Any] = {**base, "choices": [choice]}
        if usage is not None:
            body["usage"] = None  # with include_usage every chunk but the last says null
        return f"data: {json.dumps(body)}\n\n"

    frames = [
        chunk({"role": "assistant", "content": "" if not tool_calls else None, "refusal": None})
    ]
    for part in _split(text, pieces):
        frames.append(chunk({"content": part}))
    for index, (cid, name, args) in enumerate(tool_calls or []):
        frames.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": cid,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        for part in _split(args, pieces):
            frames.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            )
    frames.append(chunk({}, finish_reason or ("tool_calls" if tool_calls else "stop")))
    if usage is not None:
        frames.append(
            f"data: {json.dumps({**base, 'choices': [], 'usage': _openai_usage(*usage)})}\n\n"
        )
    frames.append("data: [DONE]\n\n")
    return frames


def openai_error(status: int, message: str | None = None) -> dict[str, Any]:
    kinds = {
        400: ("invalid_request_error", None),
        401: ("invalid_request_error", "invalid_api_key"),
        404: ("invalid_request_error", "model_not_found"),
        429: ("rate_limit_error", "rate_limit_exceeded"),
    }
    kind, code = kinds.get(status, ("server_error", None))
    return {
        "error": {
            "message": message or f"fake upstream error {status}",
            "type": kind,
            "param": None,
            "code": code,
        }
    }


# ---------------------------------------------------------------------------------------------
# Anthropic messages wire shapes

_ANTHROPIC_MODEL = "claude-sonnet-5-5"


def anthropic_message(
    text: str | None = None,
    tool_uses: list[tuple[str, str, dict[str, Any]]] | None = None,
    usage: tuple[int, int] = (120, 40),
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """A messages body; `tool_uses` as (id, name, input)."""
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "text", "text": text})
    for tid, name, tool_input in tool_uses or []:
        content.append({"type": "tool_use", "id": tid, "name": name, "input": tool_input})
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": _ANTHROPIC_MODEL,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_uses else "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage[0],
            "output_tokens": usage[1],
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def anthropic_stream(
    text: str = "",
    tool_uses: list[tuple[str, str, str]] | None = None,
    usage: tuple[int, int] = (120, 40),
    stop_reason: str | None = None,
    pieces: int = 3,
) -> list[str]:
    """Messages SSE frames; `tool_uses` as (id, name, input JSON string, streamed in pieces)."""

    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    start = anthropic_message(usage=(usage[0], 1))
    start.update(content=[], stop_reason=None)
    frames = [event("message_start", {"message": start}), event("ping", {})]
    index = 0
    if text:
        frames.append(
            event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
        )
        for part in _split(text, pieces):
            frames.append(
                event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": part}},
                )
            )
        frames.append(event("content_block_stop", {"index": 0}))
        index = 1
    for tid, name, args in tool_uses or []:
        block = {"type": "tool_use", "id": tid, "name": name, "input": {}}
        frames.append(event("content_block_start", {"index": index, "content_block": block}))
        for part in _split(args, pieces):
            delta = {"type": "input_json_delta", "partial_json": part}
            frames.append(event("content_block_delta", {"index": index, "delta": delta}))
        frames.append(event("content_block_stop", {"index": index}))
        index += 1
    stop = stop_reason or ("tool_use" if tool_uses else "end_turn")
    frames.append(
        event(
            "message_delta",
            {
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage[1]},
            },
        )
    )
    frames.append(event("message_stop", {}))
    return frames


def anthropic_error(status: int, kind: str | None = None) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }
    kind = kind or kinds.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": f"fake upstream {kind}"},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


def anthropic_stream_error(kind: str = "overloaded_error") -> str:
    """An `error` event, as the API sends inside a 200 stream when it gives up part-way."""
    body = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
    return f"event: error\ndata: {json.dumps(body)}\n\n"


def _split(text: str, pieces: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]
