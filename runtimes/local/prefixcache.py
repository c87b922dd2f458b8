"""Prompt prefixes kept on disk, so a new process does not read the same prompt again.

On two CPU cores llama.cpp reads a prompt at about 50 tokens a second: a run's first prompt of
1,400 tokens costs half a minute before the first token, and every new process (the next
`turnout run` in the repository, a chat restarted) pays it again for the same system prompt,
tool definitions, files and history. The keys and values of those tokens are a few tens of
kilobytes each, read back in well under a second.

`PrefixStore` keeps, for one model, the KV state of prompts a process evaluated, each in a
file of its own: a header line (format, the model's identity, the tokens, the payload's size and
SHA-256) and llama.cpp's sequence state. A prompt that begins like a stored one loads that state
and evaluates only the rest. Nothing read is trusted: a file of another model or llama.cpp
build, a damaged or truncated one, or one llama.cpp refuses, is removed and the prompt read
as if there were none; the next save writes it again.

The states hold the prompt's content, so the folder is private (0700, files 0600); turnout
keeps it in the repository's `.turnout/kv`, beside the run state that holds the same text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"turnout-kv 1\n"
HEADER_LIMIT = 4 << 20  # bytes a header line may take (about 500k tokens written as JSON)


@dataclass
class StoredPrefix:
    path: Path
    tokens: list[int]
    common: int  # how many of a prompt's first tokens it holds


def model_identity(model_path: Path, *, flash_attn: bool) -> str:
    """What a stored state belongs to: the model file as it is now, the llama.cpp build (its
    state format) and the attention kernel (it lays out the values differently)."""
    import llama_cpp

    stat = model_path.stat()
    return (f"{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|llama-cpp-python "
            f"{llama_cpp.__version__}|flash_attn={flash_attn}")


class PrefixStore:
    """The stored prompt states of one model in `folder` (at most `max_files`, `max_bytes`)."""

    def __init__(self, folder: Path, identity: str, *, max_files: int = 8, max_bytes: int = 1 << 30) -> None:
        self.folder = folder
        self.identity = identity
        self.key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.max_files = max_files
        self.max_bytes = max_bytes

    def _files(self) -> list[Path]:
        try:
            return sorted(self.folder.glob(f"{self.key}-*.kv"))
        except OSError:
            return []

    def _header(self, path: Path) -> dict | None:
        """The header of a stored state of this model, or None (another model's or damaged)."""
        try:
            with path.open("rb") as handle:
                if handle.read(len(MAGIC)) != MAGIC:
                    return None
                header = json.loads(handle.readline(HEADER_LIMIT))
        except (OSError, ValueError):
            return None
        if not isinstance(header, dict) or header.get("identity") != self.identity:
            return None
        tokens = header.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            return None
        return header

    def best(self, prompt: list[int]) -> StoredPrefix | None:
        """The stored state that holds the most of `prompt`'s first tokens (None: none does)."""
        found: StoredPrefix | None = None
        for path in self._files():
            header = self._header(path)
            if header is None:
                self.discard(path)
                continue
            tokens = header["tokens"]
            common = 0
            for a, b in zip(tokens, prompt):
                if a != b:
                    break
                common += 1
            if common and (found is None or common > found.common):
                found = StoredPrefix(path=path, tokens=tokens, common=common)
        return found

    def read(self, stored: StoredPrefix) -> bytes | None:
        """The state's bytes, checked against its header (None, and the file removed, if not)."""
        try:
            with stored.path.open("rb") as handle:
                handle.read(len(MAGIC))
                header = json.loads(handle.readline(HEADER_LIMIT))
                payload = handle.read()
        except (OSError, ValueError):
            payload, header = b"", {}
        if (header.get("identity") != self.identity or header.get("tokens") != stored.tokens
                or header.get("bytes") != len(payload)
                or header.get("sha256") != hashlib.sha256(payload).hexdigest()):
            self.discard(stored.path)
            return None
        with contextlib.suppress(OSError):
            os.utime(stored.path)  # recently used: kept longest
        return payload

    def write(self, tokens: list[int], payload: bytes) -> Path:
        """Keep the state of `tokens`, written whole or not at all; states it extends go."""
        _private_folder(self.folder)
        name = hashlib.sha256(json.dumps(tokens).encode()).hexdigest()[:16]
        path = self.folder / f"{self.key}-{name}.kv"
        header = {"identity": self.identity, "tokens": tokens, "bytes": len(payload),
                  "sha256": hashlib.sha256(payload).hexdigest()}
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(MAGIC + json.dumps(header).encode() + b"\n")
                handle.write(payload)
            os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        for other in self._files():
            header = self._header(other) if other != path else None
            if header is not None and header["tokens"] == tokens[: len(header["tokens"])]:
                self.discard(other)  # a prefix of this one: this one serves every prompt it did
        self._prune(keep=path)
        return path

    def discard(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    def _prune(self, keep: Path) -> None:
        """Oldest used first, until the folder is within its bounds."""
        sized = []
        for path in self._files():
            with contextlib.suppress(OSError):
                stat = path.stat()
                sized.append((stat.st_mtime_ns, stat.st_size, path))
        sized.sort(reverse=True)  # newest first
        total = 0
        for count, (_, size, path) in enumerate(sized, 1):
            total += size
            if path != keep and (count > self.max_files or total > self.max_bytes):
                self.discard(path)


def _private_folder(path: Path) -> None:
    """`path` (narrowed to 0700 if it exists) and its missing parents, each 0700 whatever the
    umask."""
    missing, current = [], path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    os.chmod(path, 0o700)
