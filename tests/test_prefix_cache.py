"""The on-disk store of prompt states: what it finds, what it refuses, what it keeps.
(The states themselves, loaded into a real model, are tested in test_llama_cpp.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from turnout.runtimes.local.prefixcache import PrefixStore


def store(folder: Path, identity: str = "model-a", **bounds: int) -> PrefixStore:
    return PrefixStore(folder / "kv", identity, **bounds)


def test_the_state_holding_most_of_a_prompt_is_found_and_read_back_whole(tmp_path: Path) -> None:
    kept = store(tmp_path)
    kept.write([1, 2, 3, 4], b"state of four")
    kept.write([1, 2, 9], b"state of three")

    found = kept.best([1, 2, 3, 4, 5, 6])
    assert found is not None and found.tokens == [1, 2, 3, 4] and found.common == 4
    assert kept.read(found) == b"state of four"
    assert kept.best([1, 2, 9, 9]).common == 3  # type: ignore[union-attr]
    assert kept.best([7, 8]) is None
    assert oct((tmp_path / "kv").stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "kv").iterdir()} == {"0o600"}


def test_a_damaged_or_truncated_state_is_refused_and_removed(tmp_path: Path) -> None:
    kept = store(tmp_path)
    path = kept.write([1, 2, 3], b"x" * 1000)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))

    found = kept.best([1, 2, 3])
    assert found is not None and kept.read(found) is None and not path.exists()

    path = kept.write([1, 2, 3], b"x" * 1000)
    path.write_bytes(path.read_bytes()[:-1])
    assert kept.read(kept.best([1, 2, 3])) is None and not path.exists()  # type: ignore[arg-type]


def test_another_models_state_is_never_found_and_a_foreign_file_is_dropped(tmp_path: Path) -> None:
    store(tmp_path, "model-a").write([1, 2, 3], b"a's state")
    other = store(tmp_path, "model-b")
    assert other.best([1, 2, 3]) is None

    # A file named as this model's but written for another (copied, renamed) is removed.
    a_file = next((tmp_path / "kv").glob("*.kv"))
    forged = a_file.with_name(f"{other.key}-{a_file.name.split('-', 1)[1]}")
    os.rename(a_file, forged)
    assert other.best([1, 2, 3]) is None and not forged.exists()


def test_a_longer_state_replaces_the_ones_it_extends_and_the_folder_stays_bounded(tmp_path: Path) -> None:
    kept = store(tmp_path, max_files=2)
    kept.write([1, 2], b"ab")
    kept.write([1, 2, 3], b"abc")
    assert len(list((tmp_path / "kv").glob("*.kv"))) == 1  # [1, 2] is a prefix of [1, 2, 3]

    kept.write([5], b"e")
    kept.write([6], b"f")
    names = list((tmp_path / "kv").glob("*.kv"))
    assert len(names) == 2
    assert kept.best([1, 2, 3]) is None and kept.best([6]) is not None  # the oldest went first

    small = store(tmp_path / "small", max_bytes=400)
    small.write([1], b"x" * 300)
    small.write([2], b"y" * 300)
    assert small.best([1]) is None and small.best([2]) is not None


def test_a_write_cut_short_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = store(tmp_path)
    kept.write([1], b"kept")

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        kept.write([2], b"lost")
    assert [p.name.startswith(kept.key) for p in (tmp_path / "kv").iterdir()] == [True]
    assert kept.read(kept.best([1])) == b"kept"  # type: ignore[arg-type]
