"""Counting lines, words and characters, like wc."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Counts:
    lines: int
    words: int
    chars: int

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.lines + other.lines, self.words + other.words,
                      self.chars + other.chars)


def count_text(text: str) -> Counts:
    return Counts(text.count("\n"), len(text.split()), len(text))


def format_counts(counts: Counts, label: str) -> str:
    """wc's layout: right-aligned columns, then the label."""
    return f"{counts.lines:>7} {counts.words:>7} {counts.chars:>7} {label}"
