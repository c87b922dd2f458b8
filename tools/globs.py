"""The one path glob dialect: what `**`, `*`, `?` and `[...]` mean in a "/"-separated path.

The files server's `list_files` matches with `path_matcher`; the router's path labels
(`router/scan.py`) put gitignore's anchoring around `glob_regex`. Both read a glob the same way;
tests/test_globs.py holds the table they are checked against. Standard library only, like every
module of tools/.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def glob_regex(glob: str) -> str:
    """The regular expression, without anchors, that a glob over "/"-separated paths stands for.

    `**/` is zero or more folders, as in gitignore and pathlib: `a/**/b` matches `a/b` and
    `a/x/y/b`, `**/*.py` a .py file at any depth. Any other `**` is anything, "/" included
    (`docs/**` is everything under docs/). `*` and `?` stay within one name; `[abc]`, `[a-z]`
    and `[!abc]` are one character of a set or not of it (`[[]` is a literal "["); everything
    else stands for itself.
    """
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            # Characters a regex set reads specially (or will: nested sets, set operations).
            out.append("[" + re.sub(r"([\\\[&~|])", r"\\\1", body) + "]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def path_matcher(glob: str) -> Callable[[str], bool]:
    """Whether a relative path matches: a glob without "/" is matched against the file's name at
    any depth (`*.py`), one with "/" against the whole path (`src/**/*.py`)."""
    regex = re.compile(glob_regex(glob) + r"\Z")
    if "/" in glob:
        return lambda path: regex.match(path) is not None
    return lambda path: regex.match(path.rpartition("/")[2]) is not None
