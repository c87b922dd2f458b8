"""The audit log: one JSON line per routing decision, never the payload.

Each record says when, for which run, what was asked (a hash of the request and its sizes),
what the scanner found (label and kind counts, never values), which rule decided, where the
request went, every attempt on the way, and how it ended. A team can keep the file for as long
as its rules say without keeping anything the requests carried.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field
from turnout.router.atrest import private_dir


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


class AuditLog:
    """Appends records to a JSON-lines file; each line is written whole, in one call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, record: AuditRecord) -> None:
        line = json.dumps(record.model_dump(), separators=(",", ":")) + "\n"
        private_dir(self.path.parent)
        with self._lock:
            # O_APPEND: concurrent runs in one repository interleave whole lines, never halves.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
