"""Release version numbers MAJOR.MINOR.PATCH, as the release script tags them ("v1.4.2")."""

import re

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")

Version = tuple[int, int, int]


def parse_version(text: str) -> Version:
    """ "1.4.2" or "v1.4.2" -> (1, 4, 2); ValueError for anything else."""
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def format_version(version: Version) -> str:
    return ".".join(str(n) for n in version)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` is older than, the same as or newer than `b`."""
    va, vb = parse_version(a), parse_version(b)
    return (va > vb) - (va < vb)


def bump(version: str, part: str) -> str:
    """The next version after `version` when `part` ("major", "minor", "patch") changes."""
    major, minor, patch = parse_version(version)
    if part == "major":
        return format_version((major + 1, 0, 0))
    if part == "minor":
        return format_version((major, minor + 1, 0))
    if part == "patch":
        return format_version((major, minor, patch + 1))
    raise ValueError(f"unknown version part {part!r}")


def latest(versions: list[str]) -> str:
    """The newest of the versions, as written."""
    if not versions:
        raise ValueError("no versions")
    return max(versions, key=parse_version)
