"""Text helpers shared by the front-page widgets."""

import re

ELLIPSIS = "…"
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace (newlines included) as single spaces, ends trimmed."""
    return _SPACES.sub(" ", text).strip()


def truncate(text: str, width: int) -> str:
    """`text` cut to at most `width` characters, the cut marked by an ellipsis."""
    if width < 1:
        raise ValueError("width must be at least 1")
    if len(text) <= width:
        return text
    return text[:width].rstrip() + ELLIPSIS


def first_sentence(text: str) -> str:
    """Everything up to and including the first '.', '!' or '?' followed by a space."""
    text = collapse_whitespace(text)
    parts = _SENTENCE_END.split(text, maxsplit=1)
    return parts[0]
