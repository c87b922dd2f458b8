"""turnout's exception tree. Every message says what was wrong and what to do about it.

    TurnoutError
    ├── UsageError            bad argument or configuration given by the user
    │   └── PolicyError       the routing policy file is not valid
    ├── ModelError            a model file is missing, corrupted or will not load
    ├── ToolHostError         an MCP server would not start or broke the protocol
    ├── PolicyRefusal         the policy allows no target for a request (fail closed)
    └── RuntimeFailure        a runtime failed while answering a request
        ├── UpstreamFailure   a server or cloud API failed after the bounded retries
        ├── CircuitOpen       the target failed repeatedly of late; nothing was sent
        └── BudgetExceeded    the run's token or cost budget would be exceeded; nothing was sent

Every RuntimeFailure leaves the request free to go to the next allowed target; `attempts` says
how many upstream attempts were made (0 when nothing was sent), for the audit.
"""

from __future__ import annotations


class TurnoutError(Exception):
    """Base of every error turnout raises on purpose."""


class UsageError(TurnoutError):
    """The user asked for something that cannot work as given."""


class ModelError(TurnoutError):
    """A model file is missing, does not match its pinned sha256, or fails to load."""


class ToolHostError(TurnoutError):
    """A tool server could not be started or answered outside the protocol."""


class RuntimeFailure(TurnoutError):
    """A runtime failed while answering; the request may be retried elsewhere."""

    attempts: int = 0  # upstream attempts made before giving up; 0 when nothing was sent


class UpstreamFailure(RuntimeFailure):
    """An upstream server or API failed; raised once the bounded retries are spent (or at once
    for an error that a retry cannot fix, such as a 400 or a 401)."""

    def __init__(
        self, message: str, *, target: str, attempts: int, status: str, retryable: bool
    ) -> None:
        super().__init__(message)
        self.target = target
        self.attempts = attempts
        self.status = status  # "429", "500", "timeout", "connection", "stream_cut", ...
        self.retryable = retryable  # whether the last failure was a transient one


class CircuitOpen(RuntimeFailure):
    """The target's circuit breaker is open after repeated failures; the request was not sent."""

    def __init__(self, message: str, *, target: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.target = target
        self.attempts = attempts


class BudgetExceeded(RuntimeFailure):
    """The run's token or cost budget would be exceeded by this request; it was not sent."""

    def __init__(self, message: str, *, target: str, budget: str) -> None:
        super().__init__(message)
        self.target = target
        self.budget = budget  # "tokens" or "cost"


class PolicyError(UsageError):
    """The routing policy (turnout.toml or [tool.turnout]) is not valid; the message names the key."""


class PolicyRefusal(TurnoutError):
    """No target may receive this request: it was refused before anything was sent.

    Not a `RuntimeFailure`: nothing failed, and no fallback may be tried.
    """
