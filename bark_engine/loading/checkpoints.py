"""Loading Bark's checkpoints and tokenizer safely and without extra copies.

A `.pt` file is a pickle, and a pickle can run code. We load with
`weights_only=True` and allow exactly the extra objects the real `suno/bark`
files hold: a numpy float64 scalar (`best_val_loss`) under its numpy 1.x or
2.x names. Anything else is refused before it is built.

Memory: the file is memory-mapped, the model is built on the meta device and
the mapped tensors are assigned into it, so the weights exist once (in the
page cache) and the optimizer state the files carry is never read.
"""

from __future__ import annotations

import os
import pickle
import threading
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..config import GPTConfig
from ..errors import CheckpointError
from ..model import kernels
from ..model.gpt import GPT, FineGPT
from ..model.precision import prepare_model
from .source import ModelSource, download  # noqa: F401  (part of this module's API)

Kind = Literal["causal", "fine"]
COMPILED_PREFIX = "_orig_mod."  # keys saved from a torch.compile'd model
MAX_WORDPIECE_VOCAB = 119_547  # text ids + 10,048 must stay below the text pad id 129,595


def _numpy_scalar_fn() -> Any:
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar
    return scalar


def _allowed_numpy_globals() -> list[Any]:
    """The numpy objects a checkpoint may name: scalar reconstruction and plain dtypes."""
    scalar = _numpy_scalar_fn()
    allowed: list[Any] = [
        (scalar, "numpy.core.multiarray.scalar"),  # files written with numpy 1.x
        (scalar, "numpy._core.multiarray.scalar"),  # files written with numpy 2.x
        (np.dtype, "numpy.dtype"),
    ]
    # BUILD sets a dtype's state; the unpickler allows it by the dtype's class.
    for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_):
        cls = type(np.dtype(t))
        allowed.append((cls, f"{cls.__module__}.{cls.__qualname__}"))
    return allowed


# torch keeps allow-listed globals in one process-wide set; serialise our use of it.
_SAFE_LOAD_LOCK = threading.Lock()


def safe_torch_load(path: str | os.PathLike[str], *, mmap: bool = True) -> Any:
    """`torch.load(weights_only=True)` allowing numpy scalars; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    use_mmap = mmap and zipfile.is_zipfile(path)  # legacy (pre-zip) files cannot be mapped
    try:
        with _SAFE_LOAD_LOCK, torch.serialization.safe_globals(_allowed_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=use_mmap)
    except pickle.UnpicklingError as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else "unknown object"
        raise CheckpointError(
            f"{path}: refused to load: it holds objects other than tensors and plain "
            f"numbers ({reason})"
        ) from None
    except Exception as e:  # noqa: BLE001 - a corrupt file fails anywhere in the unpickler
        # (RuntimeError, EOFError, ValueError, KeyError, IndexError on a stack it
        # underflows, ...): whichever, the user needs the file named, not a traceback
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or corrupt?): {_first_line(e)}"
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _expect_dict(value: Any, what: str, path: Path) -> dict:
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: {what} is a {type(value).__name__}, not a dict")
    return value


def _model_config(ckpt: dict, kind: Kind, path: Path) -> GPTConfig:
    args = _expect_dict(ckpt.get("model_args"), "'model_args'", path)
    is_fine = "n_codes_total" in args
    if is_fine != (kind == "fine"):
        found = "fine-stage" if is_fine else "causal (semantic/coarse)"
        raise CheckpointError(f"{path}: is a {found} checkpoint, expected a {kind} one")
    try:
        return GPTConfig.from_model_args(args)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model_args: {e}") from None


def _clean_state_dict(
    raw: dict, model: torch.nn.Module, cfg: GPTConfig, kind: Kind, path: Path
) -> dict[str, torch.Tensor]:
    """Strip `_orig_mod.`, drop causal-mask buffers, check names match the model."""
    expected = set(model.state_dict().keys())
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: 'model' holds a non-tensor entry {key!r}")
        name = key.removeprefix(COMPILED_PREFIX)
        if name.endswith(".attn.bias") and name not in expected:
            continue  # causal mask of the non-flash attention: rebuilt at run time
        state[name] = value
    if kind == "fine":
        # Tied pairs: a file may keep only the head; the head wins, as in the original.
        for i in range(cfg.n_codes_total - cfg.n_codes_given):
            head = f"lm_heads.{i}.weight"
            if head in state:
                state[f"transformer.wtes.{i + 1}.weight"] = state[head]
    missing = sorted(expected - state.keys())
    unexpected = sorted(state.keys() - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_some(missing)}")
        if unexpected:
            parts.append(f"unexpected {_some(unexpected)}")
        raise CheckpointError(f"{path}: weights do not fit a {kind} Bark GPT: {'; '.join(parts)}")
    return state


def _some(names: list[str], n: int = 4) -> str:
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def load_checkpoint(
    path: str | os.PathLike[str],
    kind: Kind,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    use_kernels: bool = True,
) -> GPT | FineGPT:
    """A Bark GPT (`causal`: semantic/coarse) or `FineGPT` (`fine`) from a checkpoint,
    laid out for `device` and `dtype` (`precision.prepare_model`: on the CPU its
    linear layers packed for the compiled kernels where they are built and
    `use_kernels` is on).

    The result is in eval mode with gradients off. The checkpoint is memory-
    mapped; its pages are handed back as each weight is copied into its layout.
    """
    if kind not in ("causal", "fine"):
        raise ValueError(f"kind must be 'causal' or 'fine', not {kind!r}")
    path = Path(path)
    ckpt = _expect_dict(safe_torch_load(path), "the checkpoint", path)
    cfg = _model_config(ckpt, kind, path)
    raw = _expect_dict(ckpt.get("model"), "'model'", path)
    with torch.device("meta"):
        model: GPT | FineGPT = FineGPT(cfg) if kind == "fine" else GPT(cfg)
    state = _clean_state_dict(raw, model, cfg, kind, path)
    del ckpt, raw  # the optimizer state and the rest go with the mapping
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"{path}: weights do not fit the model: {_first_line(e)}") from None
    del state
    if kind == "fine":
        model.tie_weights()
    device = torch.device(device)
    model = prepare_model(model, device, dtype, use_kernels and kernels.available())
    if kind == "fine":
        model.tie_weights()  # conversion keeps ties today; make sure regardless
    model.eval()
    model.requires_grad_(False)
    return model


# --- tokenizer ----------------------------------------------------------------------------


def read_vocab(path: str | os.PathLike[str]) -> dict[str, int]:
    """WordPiece vocabulary: token -> line number, as BERT's `load_vocab` reads it."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n") for line in f]
    except FileNotFoundError:
        raise CheckpointError(f"tokenizer vocabulary not found: {path}") from None
    except (UnicodeDecodeError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable vocab.txt ({_first_line(e)})") from None
    if len(tokens) > MAX_WORDPIECE_VOCAB:
        raise CheckpointError(
            f"{path}: {len(tokens)} tokens; Bark's text ids allow at most {MAX_WORDPIECE_VOCAB}"
        )
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if "[UNK]" not in vocab:
        raise CheckpointError(f"{path}: no [UNK] token: not a BERT WordPiece vocabulary")
    return vocab


def load_tokenizer(vocab_path: str | os.PathLike[str]) -> Any:
    """Bark's tokenizer: multilingual cased BERT WordPiece from a `vocab.txt`.

    Use as the original does: `tok.encode(text, add_special_tokens=False)`.
    Built directly from the vocabulary (no hub look-up), in well under a second.
    """
    import inspect

    from transformers import BertTokenizerFast

    vocab = read_vocab(vocab_path)
    params = inspect.signature(BertTokenizerFast.__init__).parameters
    if "vocab_file" in params:  # transformers 4.x
        return BertTokenizerFast(vocab_file=str(vocab_path), do_lower_case=False)
    return BertTokenizerFast(vocab=vocab, do_lower_case=False)  # transformers 5.x
