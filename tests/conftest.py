"""Shared fixtures. Nothing here reaches a network: models come from the local model store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def calc_repo(tmp_path: Path) -> Path:
    """A fresh copy of examples/calc: a real bug and failing tests."""
    repo = tmp_path / "calc"
    shutil.copytree(ROOT / "examples" / "calc", repo)
    return repo
