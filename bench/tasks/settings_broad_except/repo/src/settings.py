"""The service's settings file: KEY=VALUE lines, '#' comments, typed by the defaults."""

from pathlib import Path

DEFAULTS: dict[str, object] = {
    "host": "127.0.0.1",
    "port": 8080,
    "workers": 2,
    "debug": False,
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(key: str, raw: str) -> object:
    """`raw` as the type of the key's default; ValueError when it is not one."""
    default = DEFAULTS[key]
    if isinstance(default, bool):
        word = raw.lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"{key}: not a boolean: {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{key}: not an integer: {raw!r}") from None
    return raw


def parse_settings(text: str) -> dict[str, object]:
    """The settings a file's text sets; unknown keys and malformed lines are ValueErrors."""
    found: dict[str, object] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, raw = line.partition("=")
        key = key.strip().lower()
        if not sep or key not in DEFAULTS:
            raise ValueError(f"line {number}: expected KEY=VALUE with a known key: {line!r}")
        found[key] = _convert(key, raw.strip())
    return found


def load_settings(path: str | Path) -> dict[str, object]:
    """The defaults updated from the file at `path`; just the defaults if there is no file."""
    settings = dict(DEFAULTS)
    try:
        text = Path(path).read_text(encoding="utf-8")
        settings.update(parse_settings(text))
    except (OSError, ValueError):
        return dict(DEFAULTS)
    return settings
