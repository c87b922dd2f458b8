"""Durations written as "90", "45s", "10m", "1m30s" or "2h" (hours, minutes, seconds)."""

import re

_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


def parse_duration(text: str) -> int:
    """Whole seconds in a duration; a bare number is seconds. ValueError when malformed."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    match = _DURATION.fullmatch(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r}")
    hours = int(match["h"] or 0)
    minutes = int(match["m"] or 0)
    seconds = int(match["s"] or 0)
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """The shortest form parse_duration reads back: 90 -> "1m30s", 600 -> "10m", 0 -> "0s"."""
    if seconds < 0:
        raise ValueError("negative duration")
    minutes, secs = divmod(seconds, 60)
    if minutes and secs:
        return f"{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"
