"""Where the benchmark's random-weight model folder comes from, and its page cache."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

SHARED_SMALL_FOLDER = Path("/tmp/rm-small")  # written by hand on the dev machines


class BenchError(Exception):
    """A benchmark that cannot run: one line for the user."""


def _marker_dims(folder: Path) -> str | None:
    from ..testing import MARKER_FILE

    marker = folder / MARKER_FILE
    if not marker.is_file():
        return None
    for line in marker.read_text("utf-8").splitlines():
        if line.startswith("dims:"):
            return line.split(":", 1)[1].strip()
    return None


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bark-tui" / "bench"


def find_models(models: Path | None, dims: str) -> tuple[Path, str]:
    """The folder to benchmark and its dims: `--models`, else a reusable one, else write one."""
    if models is not None:
        if not models.is_dir():
            raise BenchError(f"--models {models}: not a folder")
        found = _marker_dims(models)
        if found is None:
            raise BenchError(
                f"--models {models}: no RANDOM_WEIGHTS marker; the benchmark runs on random-weight "
                "folders (python -m bark_engine.testing random-models DIR --dims small)"
            )
        return models, found
    candidates = [_cache_root() / f"random-{dims}"]
    if dims == "small":
        candidates.insert(0, SHARED_SMALL_FOLDER)
    for folder in candidates:
        if folder.is_dir() and _marker_dims(folder) == dims:
            return folder, dims
    from ..testing import write_random_models

    target = candidates[-1]
    print(f"writing a {dims} random-weight model folder to {target} (once) ...", file=sys.stderr)
    write_random_models(target, dims=dims, optimizer_state=False)
    return target, dims


def model_files(folder: Path, size: str) -> list[Path]:
    from ..config import CHECKPOINT_FILES, CODEC_DIR

    files = [folder / name for name in CHECKPOINT_FILES[size].values()]
    return files + sorted((folder / CODEC_DIR).glob("*"))


def warm_page_cache(files: Sequence[Path], chunk: int = 1 << 24) -> None:
    """Read each file once so neither engine pays for the disk (both map the same files)."""
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while f.read(chunk):
                pass


def checkpoint_config(folder: Path, size: str):
    from ..config import CHECKPOINT_FILES, GPTConfig
    from ..loading.checkpoints import safe_torch_load

    ckpt = safe_torch_load(folder / CHECKPOINT_FILES[size]["semantic"])
    return GPTConfig.from_model_args(ckpt["model_args"])
