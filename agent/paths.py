"""Where turnout keeps per-user state: chat history, tool pins, the chat audit log."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$TURNOUT_CACHE_DIR, else the user's cache directory's turnout folder."""
    configured = os.environ.get("TURNOUT_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "turnout"
