"""The audit's HTTP sink: each record reaches a real collector on a loopback port as JSON,
payload-free; a collector that is down or hangs never holds up a request, and is counted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from turnout.agent.compose import open_router
from turnout.router.policy import load_policy
from turnout.runtimes.base import ChatRequest, Message
from turnout.runtimes.errors import PolicyError
from turnout.runtimes.testing.fake import ScriptedModel

SECRET = "AKIAIOSFODNN7EXAMPLX"


class Collector:
    def __init__(self, delay: float = 0.0) -> None:
        self.bodies: list[dict[str, object]] = []
        self.headers: list[dict[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                collector.bodies.append(json.loads(body))
                collector.headers.append(dict(self.headers))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/audit"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.server.shutdown()


def router_for(repo: Path, url: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    (repo / "turnout.toml").write_text(f'version = 1\n[audit]\nhttp_url = "{url}"\nhttp_token_env = "AUDIT_TOKEN"\n')
    return open_router(repo, ScriptedModel(["fine"] * 5), environ=env or {})


def ask(router) -> None:  # type: ignore[no-untyped-def]
    router.chat(ChatRequest(messages=[Message(role="user", content=f"is {SECRET} a key?")]))


def test_each_record_reaches_the_collector_as_json_without_the_payload(tmp_path: Path, collector: Collector) -> None:
    router = router_for(tmp_path, collector.url, {"AUDIT_TOKEN": "tok-123"})
    ask(router)
    router.audit.sink.close()
    [record] = collector.bodies
    assert record["outcome"] == "ok" and record["destination"] == "local" and record["request_hash"]
    assert SECRET not in json.dumps(record)  # the scanner's counts, never the value
    assert collector.headers[0]["Authorization"] == "Bearer tok-123"
    # The file has the same record.
    assert json.loads((tmp_path / ".turnout/audit.jsonl").read_text().splitlines()[0]) == record
    assert router.audit.sink.delivered == 1


def test_a_collector_that_is_down_or_hangs_holds_up_nothing_and_is_counted(tmp_path: Path) -> None:
    slow = Collector(delay=10.0)
    try:
        (tmp_path / "slow").mkdir()
        router = router_for(tmp_path / "slow", slow.url)
        started = time.monotonic()
        for _ in range(3):
            ask(router)
        assert time.monotonic() - started < 5.0  # three requests, though one delivery takes 10 s
    finally:
        slow.server.shutdown()

    (tmp_path / "down").mkdir()
    router = router_for(tmp_path / "down", "http://127.0.0.1:9/audit")  # nothing listens there
    ask(router)
    router.audit.sink.close()
    assert router.audit.sink.failed == 1 and router.audit.sink.delivered == 0
    assert len((tmp_path / "down/.turnout/audit.jsonl").read_text().splitlines()) == 1  # the file keeps it


def test_a_collector_url_that_is_not_http_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text('version = 1\n[audit]\nhttp_url = "logs.example.com"\n')
    with pytest.raises(PolicyError, match="must start with http:// or https://"):
        load_policy(tmp_path)
