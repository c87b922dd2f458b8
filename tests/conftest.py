"""Shared fixtures. Nothing here reaches a network: models come from the local model store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pg
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def calc_repo(tmp_path: Path) -> Path:
    """A fresh copy of examples/calc: a real bug and failing tests."""
    repo = tmp_path / "calc"
    shutil.copytree(ROOT / "examples" / "calc", repo)
    return repo


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The suite's private PostgreSQL server (tests/pg.py), started once when a test needs it.
    No server is a failure, not a skip: the durability tests must run against both stores."""
    try:
        with pg.private_server() as url:
            yield url
    except pg.NoPostgres as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """The URL of an empty database of its own on the suite's server."""
    return pg.fresh_database(postgres_server)
