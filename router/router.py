"""The routing seam. For now every request goes to the local runtime; the decision is logged.

The router is itself a `ChatModel`: the agent calls one object and learns which target answered
only from `ChatResponse.route`. The full policy (labels, taint, cloud targets, fail-closed
fallbacks) replaces `decide` without changing this shape.
"""

from __future__ import annotations

import hashlib
from typing import Any

import structlog
from pydantic import BaseModel
from turnout.runtimes.base import ChatModel, ChatRequest, ChatResponse


class RouteDecision(BaseModel):
    target: str
    rule: str
    reason: str


class LocalOnlyRouter:
    """Sends every request to the one local target and records why."""

    def __init__(self, local: ChatModel, logger: Any | None = None) -> None:
        self.name = f"router({local.name})"
        self._local = local
        self._log = logger if logger is not None else structlog.get_logger("turnout.router")

    def decide(self, request: ChatRequest) -> RouteDecision:
        return RouteDecision(
            target="local",
            rule="default-local-only",
            reason="no policy file: the default policy keeps every request on this machine",
        )

    def chat(self, request: ChatRequest) -> ChatResponse:
        decision = self.decide(request)
        payload = "".join(m.content for m in request.messages).encode()
        # The audit line carries a hash and sizes, never the payload itself.
        self._log.info(
            "route",
            target=decision.target,
            rule=decision.rule,
            reason=decision.reason,
            request_sha256=hashlib.sha256(payload).hexdigest()[:16],
            request_chars=len(payload),
            messages=len(request.messages),
        )
        response = self._local.chat(request)
        response.route = decision.target
        return response
