"""Labels follow the content: fingerprints of every labelled file, matched in every request.

A path rule sees a file only when a request names it. Content travels without its name: a test
that prints a labelled file, `git diff` or `git show HEAD:...`, a search hit, a command's output,
the model restating what it read, a user pasting it into the task. So, as exact-data-matching
DLP does, the router indexes the content of every labelled file when it starts (`ContentIndex`)
and looks for it in every outbound text, whatever route it took.

What is matched, on the words of both sides (a word: a run of ASCII letters, digits, `_` and
non-ASCII bytes, letters lowercased; the escapes `\\n`, `\\t`, `\\r` of a JSON or Python
string count as spaces), so quoting, re-flowing, a diff's `+`, a CSV's commas or a repr's
quotes do not hide it:

- *shingles*: every run of 4 consecutive words of the labelled text (at least 12 bytes with
  their spaces). A request is checked at every second word, so any run of 5 words of a
  labelled file (a CSV row, a sentence, a line of code) is found wherever it sits;
- *distinctive words*: words of 16 bytes or more (keys, ids, hashes), found on their own;
- the whole of a labelled file too short for a shingle (a one-line token file).

Shingles and words that also occur in the repository's unlabelled files are dropped when the
index is built (licence headers, imports, boilerplate): that content can reach a model from the
unlabelled file anyway, and keeping it would label every request that shows ordinary code.
Only the files as they were when the run started are subtracted; a file written during the run
never removes anything (a model could otherwise launder labelled text through a copy).
Shingles with fewer than 6 distinct bytes (`0 0 0 0`) are not indexed.

Cost: a request's words come from one `bytes.translate` and one `split`, its shingles from
`zip` over slices of that list, looked up in the index by a set intersection: all in C, no
Python step per word. Results are cached per text, since an agent resends its history every
turn. `bench/fingerprints.py` times it on a 32k-token request.
What it does not catch: content re-encoded (base64, hex, translated, summarised in other
words), or fragments shorter than a shingle that are not distinctive words.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from turnout.router.scan import PathLabel, PathLabeler

WINDOW = 4  # words in a shingle
STRIDE = 2  # a request is checked at every STRIDE-th word: any WINDOW + STRIDE - 1 words match
MIN_WINDOW_BYTES = 12  # a shingle shorter than this (`0 1 0 1`) says nothing
DISTINCTIVE = 16  # a word at least this long is matched on its own
MIN_SHORT = 12  # a labelled file shorter than a shingle is matched whole from this length
MIN_DISTINCT_BYTES = 6
MAX_FILE_BYTES = 4 * 2**20  # larger files are not fingerprinted (read by range, they are rare)
MAX_LABELLED_BYTES = 64 * 2**20
MAX_UNLABELLED_BYTES = 32 * 2**20
MAX_SHORT_FILES = 64
MAX_FINGERPRINTS = 4_000_000  # about 400 MB at most; a file beyond it is not fingerprinted
REFRESH_SECONDS = 5.0
# Never walked: VCS data, environments, caches, and turnout's own state (it holds payloads).
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".turnout", ".venv", "venv", "node_modules", "__pycache__",
     ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox"}
)

_TABLE = bytearray(b" " * 256)
for _c in b"abcdefghijklmnopqrstuvwxyz0123456789_":
    _TABLE[_c] = _c
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _TABLE[_c] = _c + 32
for _c in range(128, 256):
    _TABLE[_c] = _c  # UTF-8 bytes of non-ASCII letters stay part of their word
_NORMALIZE = bytes(_TABLE)
_ESCAPES = (b"\\n", b"\\r", b"\\t")
Shingle = tuple[bytes, ...]


def words(text: str | bytes) -> list[bytes]:
    """The words of a text, as they are matched: see the module docstring."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"\\" in raw:  # one memchr; a two-byte search per escape costs ten times more
        for escape in _ESCAPES:
            raw = raw.replace(escape, b" ")
    return raw.translate(_NORMALIZE).split()


def _every_shingle(ws: list[bytes]) -> zip[Shingle]:
    return zip(*(ws[i:] for i in range(WINDOW)))


def _sampled_shingles(ws: list[bytes]) -> zip[Shingle]:
    # Slices with a step line up so that the n-th tuple is ws[n*STRIDE : n*STRIDE + WINDOW].
    return zip(*(ws[i::STRIDE] for i in range(WINDOW)))


@dataclass(frozen=True, slots=True)
class IndexStats:
    labelled_files: int
    unlabelled_files: int  # read to drop the content they share with the labelled ones
    fingerprints: int
    short_files: int
    seconds: float
    skipped: tuple[str, ...] = ()  # labelled files not fingerprinted, and why


class ContentIndex:
    """Fingerprints of the labelled files of one repository, and the matcher for outbound text."""

    def __init__(self, labeler: PathLabeler, repo: Path | None) -> None:
        self._labeler = labeler
        self._repo = Path(os.path.realpath(repo)) if repo is not None else None
        self._files: list[tuple[PathLabel, ...]] = []  # file id -> its labels (path included)
        self._file_ids: dict[str, int] = {}
        self._windows: dict[Shingle, int] = {}  # a shingle -> group id
        self._words: dict[bytes, int] = {}  # a distinctive word -> group id
        self._groups: list[frozenset[int]] = []  # group id -> the files that hold it
        self._group_ids: dict[frozenset[int], int] = {}
        self._short: list[tuple[bytes, int]] = []  # a short file's words joined, padded; its id
        self._seen: dict[str, tuple[float, int]] = {}  # path -> (mtime, size) when indexed
        self._cache: dict[str, frozenset[int]] = {}
        self._refreshed = 0.0
        self.stats = IndexStats(0, 0, 0, 0, 0.0)

    @property
    def active(self) -> bool:
        return bool(self._windows or self._words or self._short)

    def build(self) -> IndexStats:
        """Index every labelled file, then drop what the unlabelled files also hold."""
        started = time.perf_counter()
        if self._repo is None or not self._labeler.active:
            return self.stats
        labelled, unlabelled = self._walk()
        skipped: list[str] = []
        budget = MAX_LABELLED_BYTES
        for relative, labels, stat in labelled:
            if stat.st_size > MAX_FILE_BYTES or stat.st_size > budget:
                skipped.append(f"{relative} ({stat.st_size} bytes, over the fingerprinting limit)")
                continue
            budget -= stat.st_size
            self._index_file(relative, labels, stat)
        subtracted = 0
        if self._windows or self._words:
            budget = MAX_UNLABELLED_BYTES
            for relative, stat in unlabelled:
                if stat.st_size > MAX_FILE_BYTES or stat.st_size > budget:
                    continue
                budget -= stat.st_size
                text = _read(self._repo / relative)
                if text is not None:
                    self._subtract(words(text))
                    subtracted += 1
        self._refreshed = time.monotonic()
        self.stats = IndexStats(
            labelled_files=len(self._files), unlabelled_files=subtracted,
            fingerprints=len(self._windows) + len(self._words),
            short_files=len(self._short), seconds=round(time.perf_counter() - started, 4),
            skipped=tuple(skipped),
        )
        return self.stats

    def refresh(self, force: bool = False) -> None:
        """Index labelled files created or changed since the last look (at most every few
        seconds unless `force`). Nothing is subtracted and nothing indexed is forgotten: an
        edited file's old content stays labelled for the rest of the run."""
        if self._repo is None or not self._labeler.active:
            return
        now = time.monotonic()
        if not force and now - self._refreshed < REFRESH_SECONDS:
            return
        self._refreshed = now
        labelled, _ = self._walk(unlabelled=False)
        changed = False
        for relative, labels, stat in labelled:
            if self._seen.get(relative) != (stat.st_mtime, stat.st_size) and stat.st_size <= MAX_FILE_BYTES:
                self._index_file(relative, labels, stat)
                changed = True
        if changed:
            self._cache.clear()  # a text seen before may now match

    def index_path(self, named: str) -> None:
        """(Re)index one file a request names, if it is labelled and changed (a write, a read)."""
        if self._repo is None:
            return
        labels = self._labeler.labels_for(named)
        if not labels:
            return
        for relative in {label.path for label in labels}:
            try:
                stat = (self._repo / relative).stat()
            except OSError:
                continue
            if (self._repo / relative).is_file() and self._seen.get(relative) != (stat.st_mtime, stat.st_size) \
                    and stat.st_size <= MAX_FILE_BYTES:
                self._index_file(relative, tuple(x for x in labels if x.path == relative), stat)
                self._cache.clear()

    def files_in(self, text: str) -> tuple[PathLabel, ...]:
        """The labels (with their files) whose content `text` carries, or ()."""
        if not text or not self.active:
            return ()
        found = self._cache.get(text)
        if found is None:
            found = self._match(text)
            if len(self._cache) >= 1024:
                self._cache.pop(next(iter(self._cache)))
            self._cache[text] = found
        return tuple(label for file_id in sorted(found) for label in self._files[file_id])

    # --- internals --------------------------------------------------------------------------

    def _match(self, text: str) -> frozenset[int]:
        ws = words(text)
        found: set[int] = set()
        # keys() & iterable looks each item up in the dict, in C: no Python step per shingle.
        for key in self._windows.keys() & _sampled_shingles(ws):
            found.update(self._groups[self._windows[key]])
        if self._words:
            for word in self._words.keys() & ws:
                found.update(self._groups[self._words[word]])
        if self._short:
            padded = b" " + b" ".join(ws) + b" "
            for whole, file_id in self._short:
                if whole in padded:
                    found.add(file_id)
        return frozenset(found)

    def _walk(self, unlabelled: bool = True) -> tuple[list[tuple[str, tuple[PathLabel, ...], os.stat_result]],
                                                     list[tuple[str, os.stat_result]]]:
        assert self._repo is not None
        labelled: list[tuple[str, tuple[PathLabel, ...], os.stat_result]] = []
        others: list[tuple[str, os.stat_result]] = []
        root = str(self._repo)
        # The subtraction needs every file; a look for labelled ones only the globs' folders.
        tops = ["."] if unlabelled else self._labeler.folders()
        walks = [os.walk(root if top == "." else os.path.join(root, top)) for top in tops]
        for folder, dirs, files in (entry for walk in walks for entry in walk):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            base = os.path.relpath(folder, root)
            for name in sorted(files):
                relative = name if base == "." else f"{base}/{name}"
                full = os.path.join(folder, name)
                if os.path.islink(full):
                    continue  # a link's target is walked (or lies outside): indexed as itself
                try:
                    stat = os.stat(full)
                except OSError:
                    continue
                labels = self._labeler.labels_of_relative(relative)
                if labels:
                    labelled.append((relative, tuple(labels), stat))
                elif unlabelled:
                    others.append((relative, stat))
        return labelled, others

    def _index_file(self, relative: str, labels: tuple[PathLabel, ...], stat: os.stat_result) -> None:
        assert self._repo is not None
        self._seen[relative] = (stat.st_mtime, stat.st_size)
        text = _read(self._repo / relative)
        if text is None:
            return
        ws = words(text)
        file_id = self._file_ids.get(relative)
        if file_id is None:
            file_id = self._file_ids[relative] = len(self._files)
            self._files.append(labels)
        joined = b" ".join(ws)
        if len(ws) < WINDOW or len(joined) < MIN_WINDOW_BYTES:
            if len(joined) >= MIN_SHORT and len(self._short) < MAX_SHORT_FILES:
                self._short.append((b" " + joined + b" ", file_id))
            return
        shingles = {
            s for s in _every_shingle(ws)
            if sum(map(len, s)) + WINDOW - 1 >= MIN_WINDOW_BYTES and len(set(b"".join(s))) >= MIN_DISTINCT_BYTES
        }
        distinctive = {w for w in ws if len(w) >= DISTINCTIVE}
        if len(self._windows) + len(self._words) + len(shingles) + len(distinctive) > MAX_FINGERPRINTS:
            return  # memory stays bounded; the path rules still hold for this file
        group = self._group_of(frozenset((file_id,)))
        for index, keys in ((self._windows, shingles), (self._words, distinctive)):
            shared = index.keys() & keys
            index.update(dict.fromkeys(keys - shared, group))
            for key in shared:
                index[key] = self._group_of(self._groups[index[key]] | {file_id})

    def _subtract(self, ws: list[bytes]) -> None:
        for key in self._windows.keys() & _every_shingle(ws):
            del self._windows[key]
        for word in self._words.keys() & ws:
            del self._words[word]

    def _group_of(self, files: frozenset[int]) -> int:
        group = self._group_ids.get(files)
        if group is None:
            group = self._group_ids[files] = len(self._groups)
            self._groups.append(files)
        return group


def _read(path: Path) -> str | None:
    """A text file's content, or None for a binary or unreadable one."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")
