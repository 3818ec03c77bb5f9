"""Small helpers the three stage loops share: input checks, cancellation, progress.

Kept apart from the loops so each stage module reads as its algorithm only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch

from ..config import MAX_BATCH
from ..errors import BadInputError, Cancelled

OnStep = Callable[[int, "int | None"], None]  # (steps done, planned total)


def check_cancel(cancel: threading.Event | None, stage: str) -> None:
    """Raise `Cancelled` once the caller has set the event; called between tokens."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{stage} stage cancelled")


def check_batch(n_rows: int) -> None:
    """A stage call runs 1..MAX_BATCH rows."""
    if not 1 <= n_rows <= MAX_BATCH:
        raise BadInputError(f"a batch holds 1..{MAX_BATCH} rows, got {n_rows}")


def token_array(
    tokens: np.ndarray | None, *, name: str, ndim: int, upper: int, rows: int | None = None
) -> np.ndarray | None:
    """Validate an integer token array and return it as int64 (None passes through).

    Bad tokens would index past an embedding table deep inside the model; a
    one-line `BadInputError` here says which input is wrong instead.
    """
    if tokens is None:
        return None
    arr = np.asarray(tokens)
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.integer):
        raise BadInputError(f"{name} must be a {ndim}-D integer array, got {arr.dtype} {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise BadInputError(f"{name} must have {rows} rows, got {arr.shape[0]}")
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise BadInputError(f"{name} holds tokens outside [0, {upper})")
    return arr.astype(np.int64, copy=False)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter (all of ours live on one device)."""
    return next(model.parameters()).device
