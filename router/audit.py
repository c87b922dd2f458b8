"""The audit log: one JSON line per routing decision, never the payload.

Each record says when, for which run, what was asked (a hash of the request and its sizes),
what the scanner found (label and kind counts, never values), which rule decided, where the
request went, every attempt on the way, and how it ended. A team can keep the file for as long
as its rules say without keeping anything the requests carried.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import threading
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field
from turnout.router.atrest import private_dir


def open_audit(path: Path, http_url: str = "", token: str = "") -> AuditLog:
    """The audit log at `path`, shipping to `http_url` as well when one is configured."""
    return AuditLog(path, HttpSink(http_url, token) if http_url else None)


class AuditAttempt(BaseModel):
    target: str
    outcome: str  # ok | failed | unavailable | budget
    upstream_attempts: int = 0
    error: str = ""  # the exception's class name, never its message (it may quote a reply)
    seconds: float = 0.0


class AuditRecord(BaseModel):
    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    run_id: str = ""
    request_hash: str
    request_bytes: int
    messages: int
    estimated_tokens: int
    work_class: str
    labels: dict[str, int]
    kinds: dict[str, int]
    rule: str
    allowed: list[str]
    redacted: int = 0  # values replaced by placeholders before sending
    destination: str = ""  # the target that answered; empty when none did
    attempts: list[AuditAttempt] = Field(default_factory=list)
    outcome: str  # ok | refused | failed | explained
    policy: str = ""  # the policy file; empty for the default policy


class HttpSink:
    """Ships each record to a collector as one JSON POST, from a thread of its own: `send` only
    puts the record on a bounded queue, so a collector that is down, slow or refusing never
    holds up a request. What could not be delivered is counted (`failed`: the collector said
    no or could not be reached; `dropped`: the queue was full), never retried into memory."""

    QUEUE = 1000
    TIMEOUT_S = 5.0

    def __init__(self, url: str, token: str = "") -> None:
        self.url = url
        self._token = token
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self.QUEUE)
        self.delivered = self.failed = self.dropped = 0
        self._thread = threading.Thread(target=self._ship, name="audit-http", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def send(self, body: bytes) -> None:
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued, for at most `timeout` seconds."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _ship(self) -> None:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        while (body := self._queue.get()) is not None:
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.TIMEOUT_S) as reply:
                    ok = 200 <= reply.status < 300
            except (OSError, ValueError):  # HTTP errors, refused connections and timeouts alike
                ok = False
            if ok:
                self.delivered += 1
            else:
                self.failed += 1


class AuditLog:
    """Appends records to a JSON-lines file; each line is written whole, in one call. With a
    `sink`, each record goes to the collector too."""

    def __init__(self, path: Path, sink: HttpSink | None = None) -> None:
        self.path = path
        self.sink = sink
        self._lock = threading.Lock()

    def write(self, record: AuditRecord) -> None:
        line = json.dumps(record.model_dump(), separators=(",", ":")) + "\n"
        if self.sink is not None:
            self.sink.send(line.encode("utf-8"))
        private_dir(self.path.parent)
        with self._lock:
            # O_APPEND: concurrent runs in one repository interleave whole lines, never halves.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
