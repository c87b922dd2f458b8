"""Parsing and printing the short durations used in the job scheduler's config."""

from timeparse.durations import format_duration, parse_duration

__all__ = ["format_duration", "parse_duration"]
