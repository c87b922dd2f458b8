"""gitignore-style rules for the backup tool (a useful subset).

- a pattern without '/' matches a file or folder name anywhere ("*.pyc", "node_modules");
- a pattern ending in '/' matches folders and everything under them ("build/");
- any other pattern matches the whole path from the root ("docs/_build/*").

Paths are relative to the backup root and may use either separator; '#' lines are comments.
"""

from fnmatch import fnmatchcase


def parse_rules(text: str) -> list[str]:
    """The patterns of an ignore file, comments and blank lines dropped."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append(line)
    return rules


def _normalize(path: str) -> str:
    """The path in the form the rules are matched against."""
    return path.strip().removeprefix("./").strip("/")


def is_ignored(path: str, rules: list[str]) -> bool:
    """Whether any rule matches `path`."""
    path = _normalize(path)
    parts = path.split("/")
    for rule in rules:
        if rule.endswith("/"):
            folder = rule.rstrip("/")
            if any(fnmatchcase(part, folder) for part in parts[:-1]):
                return True
        elif "/" not in rule:
            if any(fnmatchcase(part, rule) for part in parts):
                return True
        elif fnmatchcase(path, rule.lstrip("/")):
            return True
    return False


def filter_paths(paths: list[str], rules: list[str]) -> list[str]:
    """The paths no rule matches, in their original order and form."""
    return [p for p in paths if not is_ignored(p, rules)]
