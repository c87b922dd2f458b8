"""A small INI-style configuration reader for the deployment tool.

The format, a subset of what configparser reads, with a few conveniences of our own::

    # a comment; lines starting with ';' are comments too
    [section]
    key = value            # inline comments need a space before the '#'
    other: value
    long = first line
        continuation lines are indented and joined with newlines
    logs = ${paths:root}/logs

Section and option names are case-insensitive: they are stored stripped and lowercased, and
every lookup normalizes the names it is given the same way. Values are strings; the typed
getters convert them and report the section and option when they cannot.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING: Any = object()
_TRUE = frozenset({"1", "yes", "true", "on"})
_FALSE = frozenset({"0", "no", "false", "off"})
_REFERENCE = re.compile(r"\$\{([^}:]+):([^}]+)\}")
_INLINE_COMMENT = re.compile(r"\s[#;].*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DEPTH = 10  # nested ${...} references, to catch loops


class ConfigError(ValueError):
    """A malformed file, or a missing or unusable value."""

    def __init__(self, message: str, line: int | None = None, source: str | None = None) -> None:
        self.line = line
        self.source = source
        if source is not None and line is not None:
            message = f"{source}, line {line}: {message}"
        elif line is not None:
            message = f"line {line}: {message}"
        elif source is not None:
            message = f"{source}: {message}"
        super().__init__(message)


def _norm(name: str) -> str:
    """A section or option name as stored: stripped and lowercased."""
    return name.strip().lower()


def _to_bool(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(value)


def _to_list(value: str) -> list[str]:
    """Items separated by commas or newlines, stripped, empty ones dropped."""
    return [item.strip() for item in re.split(r"[,\n]", value) if item.strip()]


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "5m", "1h30m" or "250ms"; a bare number is seconds."""
    text = text.strip().lower()
    if not text:
        raise ValueError("empty duration")
    try:
        return float(text)
    except ValueError:
        pass
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if text[pos:match.start()].strip():
            raise ValueError(f"not a duration: {text!r}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"not a duration: {text!r}")
    return total


class Config:
    """Parsed configuration: sections of string values, with typed getters."""

    def __init__(self) -> None:
        self._sections: dict[str, dict[str, str]] = {}

    # ---- structure

    def sections(self) -> list[str]:
        """Section names, in the order they first appeared."""
        return list(self._sections)

    def has_section(self, section: str) -> bool:
        return _norm(section) in self._sections

    def add_section(self, section: str) -> None:
        name = _norm(section)
        if not name:
            raise ConfigError("empty section name")
        self._sections.setdefault(name, {})

    def options(self, section: str) -> list[str]:
        """Option names of a section, in file order."""
        return list(self._section(section))

    def has_option(self, section: str, key: str) -> bool:
        return self.has_section(section) and _norm(key) in self._sections[_norm(section)]

    def _section(self, section: str) -> dict[str, str]:
        try:
            return self._sections[_norm(section)]
        except KeyError:
            raise ConfigError(f"no section [{_norm(section)}]") from None

    def set(self, section: str, key: str, value: object) -> None:
        """Set an option, creating its section if needed; the value is stored as a string."""
        self.add_section(section)
        self._sections[_norm(section)][_norm(key)] = str(value)

    def remove_option(self, section: str, key: str) -> bool:
        """Remove an option; whether it was there."""
        if not self.has_option(section, key):
            return False
        del self._sections[_norm(section)][_norm(key)]
        return True

    # ---- values

    def get_raw(self, section: str, key: str, fallback: Any = _MISSING) -> Any:
        """The value as written in the file, references not expanded."""
        if not self.has_option(section, key):
            if fallback is not _MISSING:
                return fallback
            raise ConfigError(f"no option {_norm(key)!r} in section [{_norm(section)}]")
        return self._sections[_norm(section)][_norm(key)]

    def get(self, section: str, key: str, fallback: Any = _MISSING) -> Any:
        """The value with ${section:option} references expanded; `fallback` if it is missing."""
        if fallback is not _MISSING and not self.has_option(section, key):
            return fallback
        return self._interpolate(self.get_raw(section, key), 0)

    def _interpolate(self, value: str, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise ConfigError("references nested too deeply (a reference loop?)")

        def expand(match: re.Match[str]) -> str:
            section, key = match.group(1), match.group(2)
            if not self.has_option(section, key):
                raise ConfigError(f"reference to a missing option: {match.group(0)}")
            return self._interpolate(self.get_raw(section, key), depth + 1)

        return _REFERENCE.sub(expand, value)

    def _typed(self, section: str, key: str, fallback: Any, convert: Callable[[str], T],
               what: str) -> T:
        if fallback is not _MISSING and not self.has_option(section, key):
            return fallback
        value = self.get(section, key)
        try:
            return convert(value)
        except ValueError:
            raise ConfigError(
                f"[{_norm(section)}] {_norm(key)}: not {what}: {value!r}"
            ) from None

    def getint(self, section: str, key: str, fallback: Any = _MISSING) -> int:
        return self._typed(section, key, fallback, int, "an integer")

    def getfloat(self, section: str, key: str, fallback: Any = _MISSING) -> float:
        return self._typed(section, key, fallback, float, "a number")

    def getbool(self, section: str, key: str, fallback: Any = _MISSING) -> bool:
        return self._typed(section, key, fallback, _to_bool, "a boolean")

    def getlist(self, section: str, key: str, fallback: Any = _MISSING) -> list[str]:
        return self._typed(section, key, fallback, _to_list, "a list")

    def getduration(self, section: str, key: str, fallback: Any = _MISSING) -> float:
        """A duration option ("30s", "1h30m") in seconds."""
        return self._typed(section, key, fallback, parse_duration, "a duration")

    # ---- whole-file operations

    def items(self, section: str) -> Iterator[tuple[str, str]]:
        """(option, expanded value) pairs of a section."""
        for key in self._section(section):
            yield key, self.get(section, key)

    def as_dict(self) -> dict[str, dict[str, str]]:
        """Every section's options with references expanded."""
        return {name: dict(self.items(name)) for name in self._sections}

    def merge(self, other: Config) -> None:
        """Take every option of `other`, overriding ours where both have one."""
        for name, options in other._sections.items():
            self.add_section(name)
            self._sections[name].update(options)

    def to_text(self) -> str:
        """The configuration as file text (raw values), which `parse` reads back."""
        out: list[str] = []
        for name, options in self._sections.items():
            if out:
                out.append("")
            out.append(f"[{name}]")
            for key, value in options.items():
                first, *rest = value.split("\n")
                out.append(f"{key} = {first}")
                out.extend(f"    {line}" for line in rest)
        return "\n".join(out) + "\n"


def _split_assignment(line: str, number: int, source: str | None) -> tuple[str, str]:
    """An option line's name and value, split at the first '=' or ':'."""
    match = re.search(r"[=:]", line)
    if match is None:
        raise ConfigError(f"expected 'key = value', got {line!r}", number, source)
    key = _norm(line[:match.start()])
    if not key:
        raise ConfigError("option without a name", number, source)
    value = _INLINE_COMMENT.sub("", line[match.end():]).strip()
    return key, value


def parse(text: str, source: str | None = None) -> Config:
    """A Config from file text; `source` names the file in error messages."""
    config = Config()
    section: str | None = None
    key: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0] in " \t" and key is not None and section is not None:
            config._sections[section][key] += "\n" + _INLINE_COMMENT.sub("", stripped)
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise ConfigError("unclosed section header", number, source)
            section = _norm(stripped[1:-1])
            if not section:
                raise ConfigError("empty section name", number, source)
            config._sections.setdefault(section, {})
            key = None
            continue
        if section is None:
            raise ConfigError("option outside any section", number, source)
        key, value = _split_assignment(stripped, number, source)
        config._sections[section][key] = value
    return config


def load(path: str | Path) -> Config:
    """Parse the file at `path`."""
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), source=str(path))


def load_layers(paths: Iterable[str | Path]) -> Config:
    """The files that exist among `paths`, merged in order: later files override earlier ones.

    This is how the tool reads /etc/deploy.conf, then ~/.deploy.conf, then ./deploy.conf.
    """
    config = Config()
    for path in paths:
        if Path(path).is_file():
            config.merge(load(path))
    return config
