"""Which source files a failing test is about, and a compact map of the rest of the repository.

The first prompt must hold the code under test, and a pytest traceback names only the frames a
failure passed through: an assertion that fails inside the test file names the test file alone,
and a small model shown only the test "fixes" the assertion. So the code under test is found the
way Python would find it: the failing test file's imports, resolved against the sys.path pytest
would have built for it. All of it is static (`ast`, `tomllib`, `configparser`): repository code
is never imported or run, because a checkout under repair may be broken or hostile.
"""

from __future__ import annotations

import ast
import builtins
import configparser
import functools
import keyword
import os
import re
import shlex
import stat
import tomllib
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path, PurePath

from pydantic import BaseModel, Field
from turnout.agent.testrun import files_named_in, is_test_file

# Folders that hold tools, caches or copies of other projects, never the code a task is about.
SKIP_DIRS = frozenset({
    ".git", ".turnout", ".venv", "venv", "node_modules", "__pycache__", "build", "dist",
    "site-packages", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
})
# Beyond this a file is data or generated code: too big for a prompt and slow to parse.
MAX_FILE_BYTES = 1_000_000
# A walk that finds more than this is in a vendored tree or a home folder, not a project.
MAX_FILES = 50_000

_BINARY_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".zip", ".gz", ".tgz",
    ".bz2", ".xz", ".7z", ".tar", ".whl", ".egg", ".so", ".dylib", ".dll", ".exe", ".o", ".a",
    ".pyc", ".pyo", ".class", ".jar", ".woff", ".woff2", ".ttf", ".otf", ".mp3", ".mp4", ".wav",
    ".ogg", ".sqlite", ".db", ".gguf", ".bin", ".npy", ".npz", ".pkl", ".parquet",
})


class Localization(BaseModel):
    """The files to put in front of the model, best first, and why each was chosen.

    `reasons` travels with the list so a prompt (or a person reading a trace) can say why a file
    is shown; a file chosen by several rules keeps its first reason and notes the others.
    """

    files: list[str] = Field(default_factory=list)
    test_files: list[str] = Field(default_factory=list)
    reasons: dict[str, str] = Field(default_factory=dict)


# --- reading the repository -------------------------------------------------------------------


def _skipped(rel: str) -> bool:
    # .egg-info folders are setuptools' generated metadata, a copy of nothing worth reading.
    return any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.split("/")[:-1])


def _is_conftest(rel: str) -> bool:
    return rel.rsplit("/", 1)[-1] == "conftest.py"


def _is_test_module(rel: str) -> bool:
    """A file pytest collects by its default naming, as opposed to a helper in a tests folder."""
    name = rel.rsplit("/", 1)[-1]
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _repo_rel(path: Path, root: Path) -> str | None:
    """`path` as a repository-relative POSIX path, or None when it is no readable file of ours.

    Symlinks are resolved first, so one pointing outside the repository is refused and two
    names for one file come out as one.
    """
    try:
        real = path.resolve()
        info = real.stat()
    except (OSError, RuntimeError, ValueError):
        return None
    if not real.is_relative_to(root) or not stat.S_ISREG(info.st_mode):
        return None
    if info.st_size > MAX_FILE_BYTES:
        return None
    rel = real.relative_to(root).as_posix()
    return None if _skipped(rel) else rel


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when it is unreadable, over the size limit or binary."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except (OSError, ValueError):
        return None
    return None if b"\0" in data else data


def _parse(path: Path) -> ast.Module | None:
    """The file's syntax tree; None for anything that is not a readable, parseable module."""
    try:
        info = path.stat()
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        return None
    # Keyed on mtime and size so that a file the agent has just edited is parsed afresh.
    return _parse_cached(str(path), info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=2048)
def _parse_cached(path: str, mtime_ns: int, size: int) -> ast.Module | None:
    data = _read_bytes(Path(path))
    if data is None:
        return None
    try:
        # Bytes, not text: compile() honours a PEP 263 coding line. Old code's invalid escape
        # sequences warn on parse; that is the repository's business, not this process's.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(data, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _has_content(path: Path) -> bool:
    """Whether showing the file would show anything: empty and docstring-only inits would not."""
    data = _read_bytes(path)
    if data is None or not data.strip():
        return False
    if path.suffix != ".py":
        return True
    tree = _parse(path)
    if tree is None:
        return True  # a file that does not parse is worth showing: it may be the bug
    return any(not _is_docstring(node) for node in tree.body)


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _walk(root: Path) -> list[str]:
    """Every file in the repository outside SKIP_DIRS, as sorted repository-relative paths.

    Directory symlinks are not followed (they can loop, or lead out); file symlinks are kept
    only when they point at a regular file inside the repository.
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda _error: None):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(f"{d}/x"))
        here = Path(dirpath)
        for name in filenames:
            path = here / name
            try:
                info = path.stat()
            except OSError:
                continue  # a dangling symlink, or a file gone since the listing
            # A FIFO or socket would block the first read of it.
            if not stat.S_ISREG(info.st_mode):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                continue
            found.append(path.relative_to(root).as_posix())
            if len(found) >= MAX_FILES:
                return sorted(found)
    return sorted(found)


class _Listing:
    """The repository's files, walked once and only if some rule needs them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: list[str] | None = None
        self._by_name: dict[str, list[str]] | None = None

    @property
    def files(self) -> list[str]:
        if self._files is None:
            self._files = _walk(self.root)
        return self._files

    def ending_with(self, tail: str) -> list[str]:
        """Files whose path is `tail` or ends with `/tail`; looked up by name, not scanned."""
        if self._by_name is None:
            self._by_name = {}
            for rel in self.files:
                self._by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
        candidates = self._by_name.get(tail.rsplit("/", 1)[-1], [])
        return [rel for rel in candidates if rel == tail or rel.endswith("/" + tail)]


# --- which test files failed ------------------------------------------------------------------

_PATH = r"[^\s'\"():]+?\.py"
# Lines that name a file *as a test file*: whatever its name, pytest collected it.
_TEST_FILE_LINES = [
    re.compile(rf"(?m)^(?:FAILED|ERROR)\s+(?P<path>{_PATH})(?=::|\s|$)"),
    re.compile(rf"(?m)^(?P<path>{_PATH})::\S+\s+(?:FAILED|ERROR)\b"),
    re.compile(rf"(?m)^(?P<path>{_PATH}) [.sxXRFE]*[FE][.sxXRFE]*(?:\s+\[\s*\d+%\])?[ \t]*$"),
    re.compile(rf"(?m)^_+ ERROR (?:collecting|at setup of|at teardown of) (?P<path>{_PATH})\b"),
    re.compile(r"ImportError while importing test module '(?P<path>[^']+?\.py)'"),
]
# Lines that name any file a failure passed through; only test modules count from these.
_LOCATION_LINES = [
    re.compile(rf"(?m)^(?P<path>{_PATH}):\d+: "),
    re.compile(r'File "(?P<path>[^"]+?\.py)", line \d+'),
]
_CONFTEST_ERROR = re.compile(r"ImportError while loading conftest '(?P<path>[^']+?\.py)'")


def failing_test_files(output: str, repo: Path) -> list[str]:
    """The test files a pytest run reports as failing or erroring, in order of first mention.

    Read from the summary lines (`FAILED`/`ERROR`), the per-file progress lines, collection
    errors and the locations in tracebacks, so that it works for -q, -v and --tb=native runs.
    Only files that exist inside the repository are returned.
    """
    root = repo.resolve()
    return _failing_test_files(output, root, _Listing(root))


def _failing_test_files(output: str, root: Path, listing: _Listing) -> list[str]:
    hits: list[tuple[int, str, bool]] = []
    for pattern in _TEST_FILE_LINES:
        hits += [(m.start("path"), m["path"], True) for m in pattern.finditer(output)]
    for pattern in _LOCATION_LINES:
        hits += [(m.start("path"), m["path"], False) for m in pattern.finditer(output)]
    found: list[str] = []
    for _, raw, named_as_test in sorted(hits):
        # Checked on the raw name first: a traceback is mostly frames of other packages.
        if not named_as_test and not _is_test_module(raw.replace("\\", "/")):
            continue
        rel = _locate(raw, root, listing)
        if rel is None or rel in found or _is_conftest(rel):
            continue
        # A traceback also passes through the code under test and through test helpers.
        if named_as_test or _is_test_module(rel):
            found.append(rel)
    return found


def _locate(raw: str, root: Path, listing: _Listing) -> str | None:
    """The repository file an output line means by `raw`.

    pytest prints paths relative to its rootdir, which is a subfolder when that holds the ini
    file, and a run elsewhere (a container, another checkout) prints other absolute paths; a
    path's tail that fits exactly one repository file is taken to mean that file.
    """
    text = raw.replace("\\", "/")
    path = Path(text)
    rel = _repo_rel(path if path.is_absolute() else root / path, root)
    if rel is not None:
        return rel
    parts = [p for p in path.parts if p not in ("/", ".")]
    if ".." in parts or not parts:
        return None
    tails = (
        ["/".join(parts[i:]) for i in range(len(parts) - 1)] if path.is_absolute()
        else ["/".join(parts)]
    )
    for tail in tails:
        matches = listing.ending_with(tail)
        if len(matches) == 1:
            return _repo_rel(root / matches[0], root)
    return None


# --- where a test file's imports are looked up ------------------------------------------------


class _Parents:
    """`Path.parents`, kept aside until it is indexed."""

    def __init__(self, path: PurePath) -> None:
        self.path = path


_Value = str | int | PurePath | _Parents | None


class _StaticPaths:
    """Evaluates the few expressions test suites build sys.path entries from, without running them.

    Anything it does not know evaluates to None, and an entry that is None is left out: a
    search root missed costs a file in the prompt, a made-up one could cost the wrong file.
    """

    _ABSOLUTIZE = frozenset({"os.path.abspath", "os.path.realpath"})
    _PATH_TYPES = frozenset({
        "Path", "pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.PurePosixPath",
    })

    def __init__(self, tree: ast.Module, file: Path, root: Path) -> None:
        self.file, self.root = file, root
        self.aliases: dict[str, str] = {}
        stores: Counter[str] = Counter()
        bindings: dict[str, ast.expr] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.aliases[local] = alias.name if alias.asname else local
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                stores[node.id] += 1
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                if isinstance(node.targets[0], ast.Name):
                    bindings[node.targets[0].id] = node.value
            elif (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.value is not None
            ):
                bindings[node.target.id] = node.value
        # A name assigned twice may hold either value at the moment sys.path is changed.
        self.bindings = {name: value for name, value in bindings.items() if stores[name] == 1}

    def dotted(self, node: ast.expr) -> str | None:
        """`os.path.join` for `join` imported from os.path, `osp.join`, or `os.path.join`."""
        if isinstance(node, ast.Name):
            name = self.aliases.get(node.id, node.id)
        elif isinstance(node, ast.Attribute):
            owner = self.dotted(node.value)
            if owner is None:
                return None
            name = f"{owner}.{node.attr}"
        else:
            return None
        return "os.path." + name[len("posixpath."):] if name.startswith("posixpath.") else name

    def entry(self, node: ast.expr) -> Path | None:
        """The directory an entry expression names; a relative one is taken from pytest's cwd."""
        value = self.value(node)
        if isinstance(value, (str, PurePath)) and str(value):
            return self._absolute(value)
        return None

    def _absolute(self, value: str | PurePath) -> Path:
        path = Path(value)
        # The tests run from the repository root, so that is what a relative entry means.
        return Path(os.path.normpath(path if path.is_absolute() else self.root / path))

    def value(self, node: ast.expr, depth: int = 0) -> _Value:
        if depth > 30:
            return None
        match node:
            case ast.Constant(value=str() | int() as constant) if not isinstance(constant, bool):
                return constant
            case ast.Name(id="__file__"):
                return str(self.file)
            case ast.Name(id=name) if name in self.bindings:
                return self.value(self.bindings[name], depth + 1)
            case ast.JoinedStr(values=parts):
                pieces = []
                for part in parts:
                    piece = self.value(part.value, depth + 1) if isinstance(
                        part, ast.FormattedValue) else self.value(part, depth + 1)
                    if not isinstance(piece, (str, PurePath)):
                        return None
                    pieces.append(str(piece))
                return "".join(pieces)
            case ast.BinOp(left=left, op=ast.Div(), right=right):
                a, b = self.value(left, depth + 1), self.value(right, depth + 1)
                if isinstance(a, PurePath) and isinstance(b, (str, PurePath)):
                    return a / b
                if isinstance(a, str) and isinstance(b, PurePath):
                    return Path(a) / b
                return None
            case ast.BinOp(left=left, op=ast.Add(), right=right):
                a, b = self.value(left, depth + 1), self.value(right, depth + 1)
                return a + b if isinstance(a, str) and isinstance(b, str) else None
            case ast.Subscript(value=base, slice=index):
                parents, i = self.value(base, depth + 1), self.value(index, depth + 1)
                if isinstance(parents, _Parents) and isinstance(i, int):
                    try:
                        return self._absolute(parents.path).parents[i]
                    except IndexError:
                        return None
                return None
            case ast.Attribute(value=base, attr=attr):
                path = self.value(base, depth + 1)
                if isinstance(path, PurePath):
                    if attr == "parent":
                        return path.parent
                    if attr == "parents":
                        return _Parents(path)
                return None
            case ast.Call(func=func, args=args, keywords=[]):
                return self._call(func, args, depth)
        return None

    def _call(self, func: ast.expr, args: list[ast.expr], depth: int) -> _Value:
        name = self.dotted(func)
        result = self._function(name, args, depth) if name is not None else None
        if result is None and isinstance(func, ast.Attribute):
            # Not os.path.join or Path(...): a method of a value, ROOT.joinpath("src").
            return self._method(func, args, depth)
        return result

    def _function(self, name: str, args: list[ast.expr], depth: int) -> _Value:
        values = [self.value(arg, depth + 1) for arg in args]
        if any(not isinstance(v, (str, PurePath)) for v in values):
            return None
        texts = [str(v) for v in values]
        if name in ("os.getcwd", "pathlib.Path.cwd", "Path.cwd"):
            return str(self.root) if name == "os.getcwd" else Path(self.root)
        if name in self._PATH_TYPES:
            return Path(*texts) if texts else Path(".")
        if len(texts) == 1 and name in ("str", "os.fspath"):
            return texts[0]
        if len(texts) == 1 and name == "os.path.dirname":
            return os.path.dirname(texts[0])
        if len(texts) == 1 and name == "os.path.normpath":
            return os.path.normpath(texts[0])
        if len(texts) == 1 and name in self._ABSOLUTIZE:
            return str(self._absolute(texts[0]))
        if texts and name == "os.path.join":
            return os.path.join(*texts)
        return None

    def _method(self, func: ast.Attribute, args: list[ast.expr], depth: int) -> _Value:
        owner = self.value(func.value, depth + 1)
        if not isinstance(owner, PurePath):
            return None
        values = [self.value(arg, depth + 1) for arg in args]
        if any(not isinstance(v, (str, PurePath)) for v in values):
            return None
        if func.attr in ("resolve", "absolute") and not values:
            return self._absolute(owner)
        if func.attr == "expanduser" and not values:
            return owner
        if func.attr == "joinpath":
            return owner.joinpath(*(str(v) for v in values))
        if func.attr == "as_posix" and not values:
            return owner.as_posix()
        return None


def _static_sys_path(file: Path, root: Path) -> tuple[list[Path], list[Path]]:
    """The directories a file puts in front of sys.path and at its end, as far as `ast` can tell.

    Calls anywhere count, not only at module level: conftest files often do it inside
    `pytest_configure` or under `if ... not in sys.path`.
    """
    tree = _parse(file)
    if tree is None:
        return [], []
    paths = _StaticPaths(tree, file, root)
    ops: list[tuple[int, int, bool, ast.expr]] = []  # (line, column, in front?, entry)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            where, args = node.func.attr, node.args
            if paths.dotted(node.func.value) == "sys.path":
                if where == "insert" and len(args) == 2:
                    ops.append((node.lineno, node.col_offset, True, args[1]))
                elif where == "append" and len(args) == 1:
                    ops.append((node.lineno, node.col_offset, False, args[0]))
                elif where == "extend" and args and isinstance(args[0], ast.List | ast.Tuple):
                    ops += [(node.lineno, node.col_offset, False, e) for e in args[0].elts]
            elif paths.dotted(node.func) == "site.addsitedir" and len(args) == 1:
                ops.append((node.lineno, node.col_offset, False, args[0]))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]  # sys.path[:0] = [...]
            if (
                isinstance(target, ast.Subscript)
                and paths.dotted(target.value) == "sys.path"
                and isinstance(target.slice, ast.Slice)
                and isinstance(node.value, (ast.List, ast.Tuple))
            ):
                ops += [(node.lineno, node.col_offset, True, e) for e in node.value.elts]
    front: list[Path] = []
    back: list[Path] = []
    for _, _, in_front, expr in sorted(ops, key=lambda op: (op[0], op[1])):
        entry = paths.entry(expr)
        if entry is not None:
            (front if in_front else back).append(entry)
    # Each insert(0, ...) lands in front of the ones made before it.
    front.reverse()
    return front, back


def _basedir(file: Path, root: Path) -> Path:
    """The folder pytest's default import mode ('prepend') puts on sys.path for a file.

    That is the first folder upward that is not a package: the file's own folder, or the one
    above its outermost package (pytest also stops at a folder name that is no identifier).
    """
    directory = file.parent
    while (
        directory != root
        and directory.is_relative_to(root)
        and (directory / "__init__.py").is_file()
        and directory.name.isidentifier()
    ):
        directory = directory.parent
    return directory


def _conftests_on_path(file: Path, root: Path) -> list[Path]:
    """conftest.py files pytest loads for `file`, the nearest first."""
    found: list[Path] = []
    directory = file.parent
    while directory.is_relative_to(root):
        conftest = directory / "conftest.py"
        if conftest != file and conftest.is_file():
            found.append(conftest)
        if directory == root:
            break
        directory = directory.parent
    return found


_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def _ini_pythonpath(start: Path, root: Path) -> list[Path]:
    """The `pythonpath` setting of the pytest config file that governs `start`.

    As pytest looks for it: the nearest folder upward with a config file that has a pytest
    section, by pytest's precedence within a folder; entries are relative to that folder.
    """
    directory = start
    while directory.is_relative_to(root):
        for name in _CONFIG_FILES:
            entries = _pythonpath_in(directory / name)
            if entries is not None:
                return [directory / entry for entry in entries]
        if directory == root:
            break
        directory = directory.parent
    return []


def _pythonpath_in(config: Path) -> list[str] | None:
    """The file's pythonpath entries; None when the file is not a pytest config at all."""
    if not config.is_file():
        return None
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if config.name == "pyproject.toml":
        try:
            tool = tomllib.loads(text).get("tool", {})
        except tomllib.TOMLDecodeError:
            return None
        section = tool.get("pytest") if isinstance(tool, dict) else None
        if not isinstance(section, dict):
            return None
        # pytest 9 also reads a native [tool.pytest] table; older ones only its ini_options.
        options = section.get("ini_options", section)
        return _split_paths(options.get("pythonpath", []) if isinstance(options, dict) else [])
    # pytest.ini is pytest's even when empty; the others only with a pytest section.
    always_ours = config.name in ("pytest.ini", ".pytest.ini")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return [] if always_ours else None
    section_name = "tool:pytest" if config.name == "setup.cfg" else "pytest"
    if not parser.has_section(section_name):
        return [] if always_ours else None
    return _split_paths(parser.get(section_name, "pythonpath", fallback=""))


def _split_paths(value: object) -> list[str]:
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError:
            return value.split()
    return []


def search_roots(test_file: str, repo: Path) -> list[Path]:
    """The folders `import x` in `test_file` is looked up in, as pytest would have sys.path.

    In sys.path's order at the time the test module runs: the test file's own inserts, its
    basedir ('prepend' import mode), each conftest's inserts and basedir (nearest first, since
    the nearest is loaded last), the ini `pythonpath`, the repository root (pytest's cwd),
    `src/` and setuptools' `where` folders (where an editable install points), appended
    entries, then the test file's folder.
    Deduplicated, existing folders inside the repository only.
    """
    root = repo.resolve()
    file = (root / test_file).resolve()
    front, back = _static_sys_path(file, root)
    ordered = [*front, _basedir(file, root)]
    for conftest in _conftests_on_path(file, root):
        conftest_front, conftest_back = _static_sys_path(conftest, root)
        ordered += [*conftest_front, _basedir(conftest, root)]
        back += conftest_back
    ordered += _ini_pythonpath(file.parent, root)
    ordered += [root, root / "src", *_setuptools_layout(root)[0], *back, file.parent]
    return _existing_dirs(ordered, root)


def _existing_dirs(paths: Iterable[Path], root: Path) -> list[Path]:
    kept: list[Path] = []
    for path in paths:
        try:
            real = path.resolve()
        except (OSError, RuntimeError):
            continue
        if not real.is_dir() or not real.is_relative_to(root) or real in kept:
            continue
        if _skipped(real.relative_to(root).as_posix() + "/x"):
            continue
        kept.append(real)
    return kept


# --- what a file imports ----------------------------------------------------------------------


def _import_requests(tree: ast.Module) -> list[tuple[str, tuple[str, ...], int]]:
    """(module, imported names, relative level) for every import in the file, in source order.

    Imports inside functions and try/except count: test files import lazily, and a fallback
    import is still the repository's module when it resolves there.
    """
    found: list[tuple[int, int, str, tuple[str, ...], int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, node.col_offset, a.name, (), 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            found.append((node.lineno, node.col_offset, node.module or "", names, node.level))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and not first.value.startswith(".")
            ):
                found.append((node.lineno, node.col_offset, first.value, (), 0))
    return [(module, names, level) for _, _, module, names, level in sorted(found)]


def _module_file(base: Path, parts: list[str]) -> Path | None:
    """The file Python runs for module `parts` under `base`: a package before a plain module."""
    directory = base.joinpath(*parts)
    init = directory / "__init__.py"
    if init.is_file():
        return init
    if parts:
        module = directory.parent / f"{parts[-1]}.py"
        if module.is_file():
            return module
    return None


def _import_targets(
    module: str,
    names: tuple[str, ...],
    level: int,
    file: Path,
    roots: list[Path],
    package_dirs: dict[str, Path],
) -> list[Path]:
    parts = module.split(".") if module else []
    if not all(part.isidentifier() for part in parts):
        return []
    if level:
        base = file.parent
        for _ in range(level - 1):
            base = base.parent
        finders = [functools.partial(_module_file, base)]
    else:
        finders = [functools.partial(_module_file, base) for base in roots]
        if package_dirs:
            finders.append(functools.partial(_mapped_module_file, package_dirs))
    for find in finders:
        # The first root that holds the module wins, as on sys.path; a bare namespace folder
        # that holds nothing of it does not stop the search.
        targets = _targets_found(find, parts, names)
        if targets:
            return targets
    return []


def _mapped_module_file(package_dirs: dict[str, Path], parts: list[str]) -> Path | None:
    """The file for module `parts` under setuptools' `package-dir`, longest package first."""
    dotted = ".".join(parts)
    for package, directory in package_dirs.items():
        if dotted == package or dotted.startswith(package + "."):
            return _module_file(directory, parts[package.count(".") + 1:])
    return None


def _targets_found(
    find: Callable[[list[str]], Path | None], parts: list[str], names: tuple[str, ...]
) -> list[Path]:
    if not parts and not names:
        return []
    targets: list[Path] = []
    module = find(parts)
    for name in names or ("",):
        submodule = find([*parts, name]) if name.isidentifier() else None
        target = submodule or module  # `from pkg import name`: the submodule if there is one
        if target is not None and target not in targets:
            targets.append(target)
    if not targets:
        return []
    # Every package on the way is run on import, and a non-empty __init__ may hold the code.
    for depth in range(len(parts), 0, -1):
        init = find(parts[:depth])
        if (
            init is not None
            and init.name == "__init__.py"
            and init not in targets
            and _has_content(init)
        ):
            targets.append(init)
    return targets


def _setuptools_layout(root: Path) -> tuple[list[Path], dict[str, Path]]:
    """Where an editable install of the project points, from pyproject.toml's [tool.setuptools].

    `packages.find.where` folders and a `package-dir` "" entry are search roots; the other
    `package-dir` entries map a package to a folder of another name (turnout.agent -> agent/),
    which no search root can express.
    """
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return [], {}
    tool = data.get("tool")
    setuptools = tool.get("setuptools") if isinstance(tool, dict) else None
    if not isinstance(setuptools, dict):
        return [], {}
    roots: list[Path] = []
    packages = setuptools.get("packages")
    found = packages.get("find") if isinstance(packages, dict) else None
    if isinstance(found, dict):
        where = found.get("where")
        roots += [root / w for w in where if isinstance(w, str)] if isinstance(where, list) else []
    mapping: dict[str, Path] = {}
    package_dir = setuptools.get("package-dir")
    for package, folder in (package_dir.items() if isinstance(package_dir, dict) else []):
        if not isinstance(package, str) or not isinstance(folder, str):
            continue
        if package:
            mapping[package] = root / folder
        else:
            roots.append(root / folder)
    longest_first = sorted(mapping.items(), key=lambda item: -len(item[0]))
    return roots, dict(longest_first)


def resolve_imports(test_file: str, repo: Path) -> list[str]:
    """The repository files `test_file` imports, in source order, resolved as pytest would.

    Absolute imports are looked up in `search_roots(test_file)`, relative ones from the file's
    own package; stdlib and third-party modules resolve nowhere in the repository and drop out.
    """
    root = repo.resolve()
    return _resolve_imports((root / test_file).resolve(), root, search_roots(test_file, repo))


def module_path(module: str, level: int, importer: str, repo: Path, roots: list[Path]) -> str | None:
    """The repository file that `module` names in `importer` (`from module import x`, relative
    at `level`), looked up in `roots` as sys.path would, or None when it is not in the repo."""
    root = repo.resolve()
    parts = module.split(".") if module else []
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    if level:
        base = (root / importer).parent
        for _ in range(level - 1):
            base = base.parent
        bases = [base]
    else:
        bases = roots
    found = next((f for b in bases if (f := _module_file(b, parts)) is not None), None)
    if found is None and not level:
        found = _mapped_module_file(_setuptools_layout(root)[1], parts)
    return _repo_rel(found, root) if found is not None else None


def _resolve_imports(file: Path, root: Path, roots: list[Path]) -> list[str]:
    tree = _parse(file)
    if tree is None:
        return []
    own = _repo_rel(file, root)
    found: list[str] = []
    package_dirs = _setuptools_layout(root)[1]
    for module, names, level in _import_requests(tree):
        for target in _import_targets(module, names, level, file, roots, package_dirs):
            rel = _repo_rel(target, root)
            if rel is not None and rel != own and rel not in found:
                found.append(rel)
    return found


# --- localization -----------------------------------------------------------------------------


class _Picks:
    """The files chosen so far, in order, with the first reason each was chosen for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.reasons: dict[str, str] = {}

    def add(self, rel: str, reason: str) -> bool:
        """Choose `rel` unless it is a test, conftest, empty or already chosen; True if chosen."""
        real = _repo_rel(self.root / rel, self.root)
        if real is None or real in self.reasons or is_test_file(real):
            return False
        if not _has_content(self.root / real):
            return False
        self.reasons[real] = reason
        return True

    def add_or_note(self, rel: str, reason: str) -> None:
        """Choose `rel`, or record one more reason on it when it was chosen already."""
        if self.add(rel, reason):
            return
        real = _repo_rel(self.root / rel, self.root)
        if real in self.reasons and reason not in self.reasons[real]:
            self.reasons[real] += f"; {reason}"


def _follow_imports(
    starts: list[str], root: Path, picks: _Picks, max_depth: int
) -> dict[str, set[str]]:
    """Choose what the test files `starts` import, then what those import, to `max_depth`.

    Test helpers and conftest.py files on a test's path are read through: what they import is
    the test's too, at the same depth. Returns each start's direct imports, so that a test can
    be told apart as relevant to files chosen for other reasons.
    """
    direct: dict[str, set[str]] = {}
    frontier: list[tuple[str, list[Path]]] = []
    for start in starts:
        roots = search_roots(start, root)
        conftests = [c.relative_to(root).as_posix() for c in _conftests_on_path(root / start, root)]
        reached: list[tuple[str, str]] = []
        seen: set[str] = set()
        for importer in [start, *conftests]:
            _read_through(importer, root, roots, seen, reached)
        for rel, importer in reached:
            if picks.add(rel, f"imported by {importer}"):
                frontier.append((rel, roots))
        direct[start] = {rel for rel, _ in reached}
    for _ in range(max_depth - 1):
        next_frontier: list[tuple[str, list[Path]]] = []
        for module, roots in frontier:
            # The module runs in the test's process, so the test's sys.path is what it sees.
            module_roots = _existing_dirs([*roots, *search_roots(module, root)], root)
            for rel in _resolve_imports(root / module, root, module_roots):
                if picks.add(rel, f"imported by {module}"):
                    next_frontier.append((rel, roots))
        frontier = next_frontier
    return direct


def _read_through(
    importer: str, root: Path, roots: list[Path], seen: set[str], reached: list[tuple[str, str]]
) -> None:
    """Collect (module, importer) for what `importer` imports, reading test helpers through."""
    if importer in seen:
        return
    seen.add(importer)
    for rel in _resolve_imports(root / importer, root, roots):
        if is_test_file(rel):
            _read_through(rel, root, roots, seen, reached)
        else:
            reached.append((rel, importer))


_TOKEN = re.compile(r"[\w./\\-]+")


def _named_paths(task: str, listing: _Listing) -> list[str]:
    """Repository files a task names: by path, by a path's tail, or as a dotted module."""
    found: list[str] = []
    for match in _TOKEN.finditer(task):
        token = match.group().replace("\\", "/").rstrip(".-/")
        token = token.removeprefix("./")
        if "." not in token and "/" not in token:
            continue
        matches = listing.ending_with(token)
        if token in matches:
            matches = [token]
        else:
            if "/" not in token and not token.endswith(".py"):  # app.cli
                module = token.replace(".", "/")
                matches += listing.ending_with(f"{module}.py")
                matches += listing.ending_with(f"{module}/__init__.py")
            # A bare `utils.py` in a repo with six of them names none of them in particular.
            if len(matches) > 5:
                matches = []
        for rel in sorted(matches, key=lambda f: (f.count("/"), f)):
            if rel not in found:
                found.append(rel)
    return found


_IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_CALLED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_COMMON = frozenset(dir(builtins)) | frozenset(keyword.kwlist)


def _task_identifiers(task: str) -> list[str]:
    """Words of the task that read as code names, in order of first appearance.

    A name in backticks or written as a call always counts; otherwise it must look like code
    (snake_case, CamelCase, a digit) or be a word of five letters or more, so that "add" or
    "main" in plain prose does not pull in every module that defines one.
    """
    marked = {name for span in _BACKTICKED.findall(task) for name in _IDENTIFIER.findall(span)}
    marked |= set(_CALLED.findall(task))
    names: list[str] = []
    for name in _IDENTIFIER.findall(task):
        if name in names or (name.startswith("__") and name.endswith("__")):
            continue
        looks_like_code = "_" in name.strip("_") or any(c.isupper() or c.isdigit() for c in name)
        if name in marked or (name not in _COMMON and (looks_like_code or len(name) >= 5)):
            names.append(name)
    return names


_Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _top_level_defs(tree: ast.Module) -> Iterator[_Definition]:
    """Module-level functions and classes, including those under a module-level if/try/with."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.AsyncWith)):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            pending = [stmt for block in blocks for stmt in block] + pending


def _defining(task: str, files: list[str], root: Path) -> list[tuple[str, str]]:
    """(file, name) for non-test files that define a name the task mentions, in the task's order."""
    names = _task_identifiers(task)
    if not names:
        return []
    rank = {name: i for i, name in enumerate(names)}
    encoded = [name.encode() for name in names]
    found: list[tuple[int, str, str]] = []
    for rel in files:
        if not rel.endswith(".py") or is_test_file(rel):
            continue
        data = _read_bytes(root / rel)
        # A byte search first: parsing every module of a big repository would be slow.
        if data is None or not any(name in data for name in encoded):
            continue
        tree = _parse(root / rel)
        if tree is None:
            continue
        for node in _top_level_defs(tree):
            if node.name in rank:
                found.append((rank[node.name], rel, node.name))
    return [(rel, name) for _, rel, name in sorted(found)]


def _conftests_named(output: str, root: Path, listing: _Listing) -> list[str]:
    found: list[str] = []
    for match in _CONFTEST_ERROR.finditer(output):
        rel = _locate(match["path"], root, listing)
        if rel is not None and rel not in found:
            found.append(rel)
    for rel in files_named_in(output, root):
        if _is_conftest(rel) and not _skipped(rel) and rel not in found:
            found.append(rel)
    return found


def localize(repo: Path, test_output: str, task: str = "", *, max_depth: int = 2) -> Localization:
    """The source files to show the model for this failure and task, most relevant first.

    Order: modules the failing test files (and their conftest.py files) import; what those
    import, to `max_depth` levels (the bug may be in a helper); non-test files the traceback
    names; files the task names by path; files defining a function or class the task names.
    When no test fails, every test file's imports follow the task's files as a weak signal.
    Test files and conftest.py are never in `files`: they are the specification.
    """
    root = repo.resolve()
    listing = _Listing(root)
    picks = _Picks(root)
    tests = _failing_test_files(test_output, root, listing)
    conftests = [c for c in _conftests_named(test_output, root, listing) if c not in tests]
    if max_depth >= 1 and (tests or conftests):
        _follow_imports([*tests, *conftests], root, picks, max_depth)
    for rel in files_named_in(test_output, root):
        if not is_test_file(rel) and not _skipped(rel):
            picks.add_or_note(rel, "named in the traceback")
    test_files = list(tests)
    named_by_task: list[str] = []
    if task:
        for rel in _named_paths(task, listing):
            if _is_test_module(rel):
                if rel not in test_files:
                    test_files.append(rel)
                continue
            picks.add_or_note(rel, "named in the task")
            named_by_task.append(rel)
        for rel, name in _defining(task, listing.files, root):
            picks.add_or_note(rel, f"defines {name}, named in the task")
            named_by_task.append(rel)
    if not tests and max_depth >= 1:
        all_tests = [f for f in listing.files if _is_test_module(f) and _repo_rel(root / f, root)]
        direct = _follow_imports(all_tests, root, picks, max_depth=1)
        # With nothing failing, the tests worth showing are the ones about the task's files.
        for test in all_tests:
            if direct[test] & set(named_by_task) and test not in test_files:
                test_files.append(test)
    files = list(picks.reasons)
    return Localization(files=files, test_files=test_files, reasons=picks.reasons)


# --- the repository map -----------------------------------------------------------------------

_MAX_LINE = 160


def _unparse(node: ast.AST | None) -> str:
    if node is None:
        return ""
    try:
        return ast.unparse(node)
    except (ValueError, RecursionError, AttributeError):
        return "..."


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """`def name(a, b=..., *args, c, **kw) -> T`: defaults elided, they cost more than they say."""
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    parts: list[str] = []
    for i, arg in enumerate(positional):
        parts.append(f"{arg.arg}=..." if i >= first_default else arg.arg)
        if args.posonlyargs and i == len(args.posonlyargs) - 1:
            parts.append("/")
    if args.vararg is not None:
        parts.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        parts.append("*")
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        parts.append(arg.arg if default is None else f"{arg.arg}=...")
    if args.kwarg is not None:
        parts.append(f"**{args.kwarg.arg}")
    returns = f" -> {_unparse(fn.returns)}" if fn.returns is not None else ""
    prefix = "async def" if isinstance(fn, ast.AsyncFunctionDef) else "def"
    return _clip(f"{prefix} {fn.name}({', '.join(parts)}){returns}")


def _class_line(cls: ast.ClassDef) -> str:
    bases = [_unparse(b) for b in cls.bases] + [f"{k.arg}={_unparse(k.value)}" for k in cls.keywords
                                               if k.arg is not None]
    return _clip(f"class {cls.name}({', '.join(bases)})" if bases else f"class {cls.name}")


def _clip(line: str) -> str:
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 3] + "..."


class _MapEntry:
    """One file of the map: its path line and, for Python, its definitions and their methods."""

    def __init__(self, header: str, defs: list[tuple[str, list[str]]] | None = None) -> None:
        self.header = header
        self.defs = defs or []
        self.with_defs = True

    def lines(self, with_methods: bool) -> list[str]:
        lines = [self.header]
        if self.with_defs:
            for line, methods in self.defs:
                lines.append(f"  {line}")
                if with_methods:
                    lines += [f"    {method}" for method in methods]
        return lines

    def defs_chars(self) -> int:
        """What dropping this file's definition lines saves, once method lines are gone."""
        return sum(len(line) + 3 for line, _ in self.defs) if self.with_defs else 0


def _definitions(tree: ast.Module) -> list[tuple[str, list[str]]]:
    defs: list[tuple[str, list[str]]] = []
    for node in _top_level_defs(tree):
        if isinstance(node, ast.ClassDef):
            # Public methods and the constructor: how the class is used, not how it works.
            methods = [
                _signature(item) for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                and (not item.name.startswith("_") or item.name == "__init__")
            ]
            defs.append((_class_line(node), methods))
        else:
            defs.append((_signature(node), []))
    return defs


def _is_binary(path: Path) -> bool:
    if path.suffix.lower() in _BINARY_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return b"\0" in handle.read(8192)
    except OSError:
        return True  # unreadable: nothing to show of it either way


def repo_map(repo: Path, *, exclude: Collection[str] = (), max_chars: int = 4000) -> str:
    """A compact outline of the repository: every file, and for Python its signatures.

    It tells the model what else exists (and what to open) without spending the prompt on
    bodies. Files in `exclude` are already in the prompt and appear by path only. Over
    `max_chars`, detail goes in this order: method lines, then definitions of the files that
    have the most, then the tail of the file list, summarised as "... N more files".
    """
    root = repo.resolve()
    shown = {str(PurePath(e)).replace("\\", "/").removeprefix("./") for e in exclude}
    entries: list[_MapEntry] = []
    for rel in _walk(root):
        path = root / rel
        if _is_binary(path):
            continue
        if rel in shown:
            entries.append(_MapEntry(f"{rel} (shown above)"))
            continue
        tree = _parse(path) if rel.endswith(".py") else None
        entries.append(_MapEntry(rel, _definitions(tree) if tree is not None else None))
    return _fit(entries, max_chars)


def _fit(entries: list[_MapEntry], max_chars: int) -> str:
    def render(with_methods: bool) -> str:
        return "\n".join(line for entry in entries for line in entry.lines(with_methods))

    text = render(with_methods=True)
    if len(text) <= max_chars:
        return text
    text = render(with_methods=False)
    if len(text) <= max_chars:
        return text
    length = len(text)
    for entry in sorted(entries, key=lambda e: e.defs_chars(), reverse=True):
        if length <= max_chars or not entry.defs_chars():
            break
        length -= entry.defs_chars()
        entry.with_defs = False
    if length <= max_chars:
        return render(with_methods=False)
    return _truncated([entry.header for entry in entries], max_chars)


def _truncated(headers: list[str], max_chars: int) -> str:
    """As many path lines as fit together with a closing "... N more files" line."""
    used = 0
    for kept, header in enumerate(headers):
        tail = f"... {len(headers) - kept} more files"
        if used + len(header) + 1 + len(tail) > max_chars:
            return "\n".join([*headers[:kept], tail])[:max_chars]
        used += len(header) + 1
    return "\n".join(headers)


__all__ = [
    "Localization",
    "failing_test_files",
    "localize",
    "module_path",
    "repo_map",
    "resolve_imports",
    "search_roots",
]
