"""Human-friendly numbers, sizes and times for the build dashboard and the CLI's status line.

Everything here returns plain strings and never looks at the locale: the dashboard is English
only, and its screenshots in the docs must not change with the machine that made them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_SMALL_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_ELLIPSIS = "…"

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def intcomma(value: float, decimals: int | None = None) -> str:
    """A number with thousands separators: 1234567 -> "1,234,567"."""
    if decimals is None:
        return f"{value:,}"
    return f"{value:,.{decimals}f}"


def compact_number(value: float) -> str:
    """Short counts for badges: 950 -> "950", 1200 -> "1.2k", 3400000 -> "3.4M"."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            text = f"{value / size:.1f}".removesuffix(".0")
            return f"{sign}{text}{suffix}"
    return f"{sign}{value:g}"


def apnumber(value: int) -> str:
    """Associated Press style: the words for 0 to 9, digits from 10 on."""
    if 0 <= value < len(_SMALL_NUMBERS):
        return _SMALL_NUMBERS[value]
    return str(value)


def ordinal(value: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    if 10 <= abs(value) % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(abs(value) % 10, "th")
    return f"{value}{suffix}"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """ "1 file", "3 files"; irregular plurals can be given ("1 child", "2 children")."""
    if count == 1:
        word = singular
    else:
        word = plural_form if plural_form is not None else singular + "s"
    return f"{count} {word}"


def join_list(items: Sequence[str], conjunction: str = "and") -> str:
    """ "a", "a and b", "a, b, and c" (with the serial comma)."""
    items = [str(item) for item in items]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} {conjunction} {items[1]}"
    return f"{', '.join(items[:-1])}, {conjunction} {items[-1]}"


def summarize_counts(counts: dict[str, int], order: Sequence[str] = ()) -> str:
    """Outcome counts in one phrase, like a test runner's: "3 passed, 1 failed, 2 skipped".

    Zero counts are left out; names in `order` come first in that order, the rest by name.
    """
    ranked = [name for name in order if counts.get(name)]
    ranked += sorted(name for name in counts if name not in order and counts[name])
    if not ranked:
        return "nothing"
    return ", ".join(f"{counts[name]} {name}" for name in ranked)


def format_percent(ratio: float, decimals: int = 1) -> str:
    """A ratio as a percentage: 0.125 -> "12.5%"; trailing ".0" kept for steady columns."""
    return f"{ratio * 100:.{decimals}f}%"


def format_bytes(size: int, binary: bool = False) -> str:
    """A byte count for people: 1500 -> "1.5 kB", 1536 with binary=True -> "1.5 KiB".

    Whole bytes are shown without decimals; larger units with one decimal.
    """
    base = 1024 if binary else 1000
    units = _BINARY_UNITS if binary else _DECIMAL_UNITS
    sign = "-" if size < 0 else ""
    size = abs(size)
    if size < base:
        return f"{sign}{size} B"
    exponent = min(int(math.log(size, base)), len(units) - 1)
    value = size / base**exponent
    if round(value, 1) >= base and exponent < len(units) - 1:
        exponent += 1
        value /= base
    return f"{sign}{value:.1f} {units[exponent]}"


def parse_size(text: str) -> int:
    """The inverse of format_bytes: "1.5 kB" -> 1500, "2 MiB" -> 2097152, "512" -> 512."""
    text = text.strip()
    number, _, unit = text.partition(" ")
    if not unit:
        for i, ch in enumerate(text):
            if not (ch.isdigit() or ch == "."):
                number, unit = text[:i], text[i:]
                break
        else:
            number, unit = text, "B"
    unit = unit.strip()
    for units, base in ((_DECIMAL_UNITS, 1000), (_BINARY_UNITS, 1024)):
        if unit in units:
            return round(float(number) * base ** units.index(unit))
    raise ValueError(f"unknown size unit {unit!r} in {text!r}")


def format_elapsed(seconds: float) -> str:
    """A stopwatch reading: "M:SS" under an hour, "H:MM:SS" from an hour on.

    Fractions of a second are dropped (a build that ran 59.9 s shows "0:59").
    """
    if seconds < 0:
        raise ValueError("elapsed time cannot be negative")
    total = int(seconds)
    hours, rest = divmod(total, HOUR)
    minutes, secs = divmod(rest, MINUTE)
    if hours:
        return f"{hours}:{minutes}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def format_duration(seconds: float, parts: int = 2) -> str:
    """A compact duration with the `parts` largest units: 3725 -> "1h 2m", 45 -> "45s"."""
    if seconds < 0:
        raise ValueError("duration cannot be negative")
    total = round(seconds)
    if total == 0:
        return "0s"
    pieces = []
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            pieces.append(f"{amount}{unit}")
    return " ".join(pieces[:parts])


def naturaldelta(seconds: float) -> str:
    """Roughly how long: "a moment", "30 seconds", "a minute", "5 minutes", "an hour", "3 days"."""
    seconds = abs(seconds)
    if seconds < 1:
        return "a moment"
    if seconds < MINUTE:
        return plural(int(seconds), "second")
    if seconds < 2 * MINUTE:
        return "a minute"
    if seconds < HOUR:
        return plural(int(seconds // MINUTE), "minute")
    if seconds < 2 * HOUR:
        return "an hour"
    if seconds < DAY:
        return plural(int(seconds // HOUR), "hour")
    if seconds < 2 * DAY:
        return "a day"
    return plural(int(seconds // DAY), "day")


def naturaltime(when: datetime, now: datetime | None = None) -> str:
    """ "5 minutes ago", "in an hour", or "just now" for under a second either way."""
    now = now if now is not None else datetime.now(when.tzinfo)
    delta: timedelta = now - when
    seconds = delta.total_seconds()
    if abs(seconds) < 1:
        return "just now"
    words = naturaldelta(seconds)
    return f"{words} ago" if seconds > 0 else f"in {words}"


def relative_date(day: date, today: date) -> str:
    """ "today", "yesterday", "tomorrow", a weekday name within the week, else "3 Mar 2024"."""
    offset = (day - today).days
    if offset == 0:
        return "today"
    if offset == -1:
        return "yesterday"
    if offset == 1:
        return "tomorrow"
    if -7 < offset < 0:
        return f"last {day.strftime('%A')}"
    if 0 < offset < 7:
        return day.strftime("%A")
    return f"{day.day} {day.strftime('%b %Y')}"


def format_rate(count: float, seconds: float, unit: str = "item") -> str:
    """Throughput: "12.5 items/s", or per minute when under one a second ("3.0 items/min")."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    per_second = count / seconds
    units = unit + ("" if per_second == 1 else "s")
    if per_second >= 1 or per_second == 0:
        return f"{per_second:.1f} {units}/s"
    per_minute = per_second * MINUTE
    units = unit + ("" if per_minute == 1 else "s")
    return f"{per_minute:.1f} {units}/min"


def eta(done: int, total: int, elapsed: float) -> str:
    """The time left at the rate so far, as format_duration gives it; "unknown" before a start."""
    if done <= 0 or elapsed <= 0:
        return "unknown"
    if done >= total:
        return "0s"
    remaining = elapsed / done * (total - done)
    return format_duration(remaining)


def truncate_middle(text: str, width: int) -> str:
    """Keep both ends of a long string (a path, a commit id): "src/very…/file.py"."""
    if width < 3:
        raise ValueError("width must be at least 3")
    if len(text) <= width:
        return text
    keep = width - 1
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + _ELLIPSIS + (text[-tail:] if tail else "")


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """ "[#####-----]  50%": a text progress bar with the percentage after it."""
    if total <= 0:
        raise ValueError("total must be positive")
    ratio = min(max(done / total, 0.0), 1.0)
    filled = int(ratio * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {ratio * 100:3.0f}%"


def status_line(name: str, done: int, total: int, elapsed: float) -> str:
    """The CLI's one-line status: name, progress bar, steps and the stopwatch."""
    return f"{name} {progress_bar(done, total)} {done}/{total} {format_elapsed(elapsed)}"
