"""turnout's exception tree. Every message says what was wrong and what to do about it.

    TurnoutError
    ├── UsageError            bad argument or configuration given by the user
    ├── ModelError            a model file is missing, corrupted or will not load
    ├── ToolHostError         an MCP server would not start or broke the protocol
    └── RuntimeFailure        a runtime failed while answering a request
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
