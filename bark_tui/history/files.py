"""Durable, atomic files for takes, and safe resolution of stored file names.

A take's files are written *before* its row is committed (see ``store``), so
each write here must be all-or-nothing and on disk when it returns: a temp
file in the same folder, fsync, ``os.replace``, then fsync the folder so the
rename itself survives a power cut. A reader therefore sees either no file or
the whole file, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bark_engine.files import atomic_write

# The original Bark voice format: a take's tokens file is a usable voice prompt.
TOKEN_KEYS = ("semantic_prompt", "coarse_prompt", "fine_prompt")
_SHORT_KEYS = {"semantic": "semantic_prompt", "coarse": "coarse_prompt", "fine": "fine_prompt"}
_NDIMS = {"semantic_prompt": 1, "coarse_prompt": 2, "fine_prompt": 2}


def safe_child(folder: Path, name: str | None) -> Path | None:
    """``folder / name`` when ``name`` is a plain file name, else None.

    Names come from the database, which a person (or a bug) may have edited:
    a name with a separator, ``..`` or an absolute path must never let a load
    or a purge reach outside the takes folder.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return None
    if os.path.isabs(name) or Path(name).name != name:
        return None
    return folder / name


def normalize_tokens(tokens: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Accept ``semantic``/``coarse``/``fine`` or the ``*_prompt`` names; check shapes.

    Raises ValueError for anything that would not load back as a Bark voice.
    """
    out: dict[str, np.ndarray] = {}
    for key, value in tokens.items():
        full = _SHORT_KEYS.get(key, key)
        if full not in _NDIMS:
            raise ValueError(f"unknown token array {key!r}; expected {', '.join(TOKEN_KEYS)}")
        arr = np.asarray(value)
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{full} must hold integers, not {arr.dtype}")
        if arr.ndim != _NDIMS[full]:
            raise ValueError(f"{full} must have {_NDIMS[full]} dimension(s), got shape {arr.shape}")
        out[full] = np.ascontiguousarray(arr, dtype=np.int64)
    missing = [k for k in TOKEN_KEYS if k not in out]
    if missing:
        raise ValueError(f"missing token arrays: {', '.join(missing)}")
    return out


def write_tokens_atomic(path: Path, tokens: Mapping[str, np.ndarray]) -> None:
    """Write an uncompressed ``.npz`` with the three prompt arrays, atomically and durably."""
    with atomic_write(path) as fh:
        np.savez(fh, **tokens)  # a file object: numpy adds no ".npz" suffix


def read_tokens(path: Path) -> dict[str, np.ndarray]:
    """Load a tokens file without ever unpickling (files may come from anywhere)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
