"""One path glob dialect, checked through both of its users against one table.

`tools/globs.py` writes the dialect once. The files server's `list_files` matches with
`path_matcher` (a glob without "/" against the file's name, one with "/" against the whole
path); the router's path labels use `router.scan.glob_to_regex`, which adds gitignore's
anchoring (a bare name at any depth, covering a folder's contents; a glob with "/" anchored at
the root). On every row of `SHARED` the two must give the same answer; the rows after it are
where their anchoring makes them differ on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from turnout.router.scan import glob_to_regex
from turnout.tools.globs import path_matcher


def _list_files(glob: str, path: str) -> bool:
    return path_matcher(glob)(path)


def _path_label(glob: str, path: str) -> bool:
    return re.search(glob_to_regex(glob), path) is not None


MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "tools.globs.path_matcher": _list_files,
    "router.scan.glob_to_regex": _path_label,
}

SHARED = [
    # a glob without "/" matches a name at any depth
    ("*.env", "prod.env", True),
    ("*.env", "config/prod.env", True),
    ("*.env", "config/prod.env.example", False),
    ("test_?.py", "tests/test_a.py", True),
    ("test_?.py", "tests/test_ab.py", False),
    # a glob with "/" is matched from the root, not from any folder
    ("secrets/**", "secrets/aws/creds", True),
    ("secrets/**", "app/secrets/x", False),
    ("data/customers/**", "data/customers/2026/export.csv", True),
    ("src/*.py", "lib/src/a.py", False),
    # `*` and `?` stay within one name
    ("data/*.csv", "data/x.csv", True),
    ("data/*.csv", "data/sub/x.csv", False),
    ("a?b/x", "a/b/x", False),
    # `**/` is zero or more folders
    ("src/**/*.py", "src/a.py", True),
    ("src/**/*.py", "src/pkg/sub/a.py", True),
    ("src/**/*.py", "srcx/a.py", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("**/*.py", "a.py", True),
    ("**/*.py", "pkg/sub/a.py", True),
    ("**/test_*.py", "test_a.py", True),
    ("**/test_*.py", "tests/unit/test_a.py", True),
    ("**/test_*.py", "tests/unit/a_test.py", False),
    # any other `**` spans folders too
    ("docs/**.txt", "docs/a/b.txt", True),
    # a set of characters is one character
    ("data/[0-9]*.csv", "data/2026.csv", True),
    ("data/[0-9]*.csv", "data/may.csv", False),
    ("data/[!0-9]*.csv", "data/may.csv", True),
    ("data/[!0-9]*.csv", "data/2026.csv", False),
    ("logs/[[]old]/x", "logs/[old]/x", True),
    # everything else is itself
    ("a+b/(x).py", "a+b/(x).py", True),
    ("a.b/x", "axb/x", False),
]

# Where the anchoring differs: a label covers what is inside a matching folder and accepts
# `./`; a listing matches a bare name only against file names.
ROUTER_ONLY = [
    ("secrets", "app/secrets/x", True),
    ("secrets/", "secrets/x", True),
    ("./secrets/**", "secrets/x", True),
    ("data/*.csv", "data/x.csv/part-0", True),
]
LIST_FILES_ONLY = [
    ("secrets", "app/secrets/x", False),
    ("secrets", "app/secrets", True),
    ("data/*.csv", "data/x.csv/part-0", False),
]


@pytest.mark.parametrize("matcher", MATCHERS.values(), ids=MATCHERS.keys())
@pytest.mark.parametrize(("glob", "path", "matches"), SHARED)
def test_both_users_of_the_dialect_read_a_glob_the_same_way(
    matcher: Callable[[str, str], bool], glob: str, path: str, matches: bool
) -> None:
    assert matcher(glob, path) is matches


@pytest.mark.parametrize(("glob", "path", "matches"), ROUTER_ONLY)
def test_a_path_label_follows_gitignore_anchoring(glob: str, path: str, matches: bool) -> None:
    assert _path_label(glob, path) is matches


@pytest.mark.parametrize(("glob", "path", "matches"), LIST_FILES_ONLY)
def test_a_listing_matches_a_bare_glob_against_file_names(
    glob: str, path: str, matches: bool
) -> None:
    assert _list_files(glob, path) is matches
