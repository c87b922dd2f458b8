"""What a path named in a request stands for: the one normalization every path rule goes through.

A model, a tool or a person names a file in many spellings: `src/../secrets/x`, `./secrets/x`,
an absolute path, a symlink `alias.txt` whose target is `secrets/x`, or a git object name
`HEAD:secrets/x` / `HEAD~1:./secrets/x` / `:0:secrets/x`. A path rule (a label's glob) must see
every spelling as the file it reaches, so both the router's taint (at run time) and
`turnout explain --file` call `repo_path`, and `spellings` lists every repository path a string
may stand for.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

# The revision part of a git object name `REV:path`: a ref, a hash, `HEAD~2`, `main^`,
# `@{upstream}`, or empty / a stage number (`:path`, `:0:path`, the index).
_REVISION_PREFIX = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_./~^@{}+-]{0,199})?")


def repo_path(repo: Path | None, named: str) -> str | None:
    """The file `named` reaches, relative to the repository root, in POSIX form: `.` and `..`
    resolved, and (with a repository to look in) every symlink followed to its real target.
    None when it lies outside the repository, or is not a single-line path.

    A relative name is taken relative to the repository root, as the tool servers take it."""
    raw = named.strip().replace("\\", "/")
    if not raw or "\n" in raw or "\0" in raw or len(raw) > 1000:
        return None
    if repo is None:
        if raw.startswith("/"):
            return None
        lexical = posixpath.normpath(raw)
        return None if lexical == ".." or lexical.startswith("../") else lexical.removeprefix("./")
    root = os.path.realpath(repo)
    # realpath resolves `..` after following each symlink, as the kernel does when a tool opens it.
    real = os.path.realpath(os.path.join(root, raw))
    if real == root:
        return "."
    if not real.startswith(root.rstrip("/") + "/"):
        return None
    return Path(real).relative_to(root).as_posix()


def lexical_path(named: str) -> str:
    """`named` with `.` and `..` resolved as text, no file system read (`a/../b` -> `b`)."""
    raw = named.strip().replace("\\", "/")
    return posixpath.normpath(raw).removeprefix("./") if raw else raw


def spellings(repo: Path | None, named: str) -> list[str]:
    """Every repository path `named` may stand for, most specific first: the real path, the
    path as written (normalized, for a symlink that points out of a labelled folder), and for a
    git object name `REV:path` the same for its path part. Outside the repository, the name's
    trailing parts (`/elsewhere/secrets/x` -> `secrets/x`, `x`), so an anchored glob still
    catches it: erring on the side of the label."""
    out: list[str] = []
    for candidate in _object_path_forms(named):
        real = repo_path(repo, candidate)
        if real is not None:
            out.append(real)
        lexical = lexical_path(candidate)
        if repo is not None and lexical.startswith("/"):
            root = os.path.realpath(repo)
            if lexical.startswith(root.rstrip("/") + "/"):
                lexical = lexical[len(root.rstrip("/")) + 1:]
        if lexical and not lexical.startswith("/") and not lexical.startswith("../") and lexical != "..":
            out.append(lexical)
        elif real is None:
            parts = [p for p in candidate.strip().replace("\\", "/").split("/") if p not in ("", ".", "..")]
            out.extend("/".join(parts[i:]) for i in range(len(parts)))
    return list(dict.fromkeys(p for p in out if p and p != "."))


def _object_path_forms(named: str) -> list[str]:
    """`named`, and where it reads as a git object name `REV:path`, its path part too."""
    forms = [named]
    head, colon, tail = named.partition(":")
    if colon and tail and not tail.startswith("//") and _REVISION_PREFIX.fullmatch(head):
        # `:0:path` (a stage of the index) and `REV:path` alike: the path is after the last
        # revision-like prefix.
        forms.append(tail)
        stage, colon2, rest = tail.partition(":")
        if colon2 and rest and stage in ("0", "1", "2", "3"):
            forms.append(rest)
    return forms
