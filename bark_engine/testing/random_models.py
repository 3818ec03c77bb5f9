"""Write a complete Bark model folder with random weights, in the real layout.

No machine this project runs on can reach a model hub, so the loading code,
the engine and the app are exercised on folders like this one: the same file
names, dict keys and quirks as `suno/bark` + `facebook/encodec_24khz`, with
noise for weights. A `RANDOM_WEIGHTS` marker lets the app say so.

Layout (`--dims large` uses `text_2.pt`, `coarse_2.pt`, `fine_2.pt`):

    DIR/RANDOM_WEIGHTS
    DIR/text.pt  DIR/coarse.pt  DIR/fine.pt
    DIR/vocab.txt
    DIR/encodec/{config.json, model.safetensors, preprocessor_config.json}
    DIR/speaker_embeddings/v2/en_speaker_0_{semantic,coarse,fine}_prompt.npy ...
    DIR/speaker_embeddings/announcer_{semantic,coarse,fine}_prompt.npy
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..config import (
    CHECKPOINT_FILES,
    COARSE_RATE_HZ,
    CODEBOOK_SIZE,
    CODEC_DIR,
    N_COARSE_CODEBOOKS,
    N_FINE_CODEBOOKS,
    PRESET_DIR,
    SEMANTIC_RATE_HZ,
    SEMANTIC_VOCAB_SIZE,
    VOCAB_FILE,
    stage_configs,
)
from .checkpoint_files import checkpoint_dict, save_checkpoint
from .files import FILE_MODE, atomic_dir, atomic_file
from .vocab import vocab_text

Dims = Literal["tiny", "small", "large"]
MARKER_FILE = "RANDOM_WEIGHTS"

# Presets written into every folder: hub-style names (v2/..., v1 without prefix).
PRESETS = (
    "v2/en_speaker_0",
    "v2/en_speaker_6",
    "v2/en_speaker_9",
    "v2/de_speaker_3",
    "v2/ja_speaker_1",
    "announcer",
    "en_speaker_1",
)
PROMPT_KINDS = ("semantic", "coarse", "fine")


@dataclass(frozen=True)
class _StageFile:
    """How one checkpoint file of the real repo is laid out."""

    stage: str  # "semantic" | "coarse" | "fine"
    kind: Literal["causal", "fine"]
    compiled_prefix: bool  # keys start with `_orig_mod.`
    old_vocab_key: bool  # `model_args` has a single `vocab_size`


_STAGE_FILES = (
    _StageFile("semantic", "causal", compiled_prefix=True, old_vocab_key=False),
    _StageFile("coarse", "causal", compiled_prefix=False, old_vocab_key=True),
    _StageFile("fine", "fine", compiled_prefix=True, old_vocab_key=False),
)


def checkpoint_size(dims: Dims) -> str:
    """Which file names a dims uses: `large` has the `_2` files, the rest the small ones."""
    return "large" if dims == "large" else "small"


def write_random_models(
    path: str | os.PathLike[str],
    dims: Dims = "tiny",
    seed: int = 0,
    optimizer_state: bool | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> Path:
    """Write a random-weight model folder at `path` (created if needed) and return it.

    The same `seed` and `dims` give the same weights. `optimizer_state=None`
    keeps the real files' AdamW entry (3x the bytes; turn it off to save disk
    for small/large benchmarks). `on_file` hears about each file written.
    """
    if dims not in ("tiny", "small", "large"):
        raise ValueError(f"unknown dims {dims!r}: use tiny, small or large")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    keep_optimizer = True if optimizer_state is None else optimizer_state
    report = on_file or (lambda _p: None)

    marker = root / MARKER_FILE
    _write_text(marker, _marker_text(dims, seed))
    report(marker)

    files = CHECKPOINT_FILES[checkpoint_size(dims)]
    configs = stage_configs(dims)
    mask_dtype = torch.bool if dims == "tiny" else torch.float32
    for i, spec in enumerate(_STAGE_FILES):
        ckpt = checkpoint_dict(
            configs[spec.stage],
            spec.kind,
            seed=_sub_seed(seed, i),
            compiled_prefix=spec.compiled_prefix,
            old_vocab_key=spec.old_vocab_key,
            mask_dtype=mask_dtype if spec.kind == "causal" else None,
            optimizer_state=keep_optimizer,
        )
        target = root / files[spec.stage]
        save_checkpoint(ckpt, target)
        del ckpt  # large checkpoints: hold one at a time
        report(target)

    vocab = root / VOCAB_FILE
    _write_text(vocab, vocab_text())
    report(vocab)

    codec = write_random_codec(root / CODEC_DIR, dims, _sub_seed(seed, 10))
    report(codec)

    for written in write_random_presets(root, _sub_seed(seed, 20)):
        report(written)
    return root


def _sub_seed(seed: int, stream: int) -> int:
    """Independent, reproducible seeds for each file from one user seed."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def _marker_text(dims: str, seed: int) -> str:
    return (
        "These are RANDOM TEST WEIGHTS written by `python -m bark_engine.testing random-models`.\n"
        "They have the layout of suno/bark and facebook/encodec_24khz, but any audio\n"
        "generated with them is noise.\n"
        f"dims: {dims}\nseed: {seed}\n"
    )


# --- EnCodec ------------------------------------------------------------------------------


def codec_config_kwargs(dims: Dims) -> dict[str, int]:
    """EncodecConfig overrides: tiny shrinks only widths; 24 kHz, 75 Hz, 1024 codes stay."""
    if dims == "tiny":
        return {"num_filters": 4, "hidden_size": 16, "codebook_dim": 16}
    return {}


def write_random_codec(target: Path, dims: Dims, seed: int) -> Path:
    """An `EncodecModel.save_pretrained` folder with random weights and random codebooks."""
    from transformers import EncodecConfig, EncodecFeatureExtractor, EncodecModel

    config = EncodecConfig(**codec_config_kwargs(dims))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EncodecModel(config).eval()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in model.quantizer.layers:
                # Codebooks start as zeros; trained ones are spread out, so draw them.
                embed = torch.randn(layer.codebook.embed.shape, generator=g)
                layer.codebook.embed.copy_(embed)
                layer.codebook.embed_avg.copy_(embed)
                layer.codebook.cluster_size.fill_(1.0)
    with atomic_dir(target) as tmp:
        with _quiet_transformers():
            model.save_pretrained(tmp)
        EncodecFeatureExtractor(
            feature_size=config.audio_channels, sampling_rate=config.sampling_rate
        ).save_pretrained(tmp)
        for file in tmp.iterdir():
            os.chmod(file, FILE_MODE)
    return target


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' "Writing model shards" bar: the CLI prints its own summary."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


# --- presets ------------------------------------------------------------------------------


def preset_relpath(name: str, kind: str) -> str:
    """Hub path of one prompt array, e.g. `speaker_embeddings/v2/en_speaker_0_fine_prompt.npy`."""
    return f"{PRESET_DIR}/{name}_{kind}_prompt.npy"


def _semantic_lengths() -> dict[str, int]:
    """Semantic tokens per v2 preset, from the packaged catalog (real prompt lengths)."""
    text = resources.files("bark_engine").joinpath("data/voices.tsv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return {row["preset"]: int(row["semantic_tokens"]) for row in rows}


def random_prompt(rng: np.random.Generator, n_semantic: int) -> dict[str, np.ndarray]:
    """A valid prompt: semantic (T,), coarse (2, T'), fine (8, T') with fine[:2] == coarse."""
    n_frames = round(n_semantic * COARSE_RATE_HZ / SEMANTIC_RATE_HZ)
    semantic = rng.integers(0, SEMANTIC_VOCAB_SIZE, size=n_semantic, dtype=np.int64)
    fine = rng.integers(0, CODEBOOK_SIZE, size=(N_FINE_CODEBOOKS, n_frames), dtype=np.int64)
    coarse = fine[:N_COARSE_CODEBOOKS].copy()
    return {"semantic": semantic, "coarse": coarse, "fine": fine}


def write_random_presets(root: Path, seed: int) -> list[Path]:
    """Write each preset's three `.npy` files in the hub's `speaker_embeddings/` layout."""
    lengths = _semantic_lengths()
    rng = np.random.default_rng(seed)
    written = []
    for name in PRESETS:
        n_semantic = lengths.get(name) or int(rng.integers(250, 400))
        for kind, array in random_prompt(rng, n_semantic).items():
            target = root / preset_relpath(name, kind)
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_npy(target, array)
            written.append(target)
    return written


# --- file helpers ---------------------------------------------------------------------------


def _write_text(target: Path, text: str) -> None:
    with atomic_file(target, "w") as f:
        f.write(text)


def _write_npy(target: Path, array: np.ndarray) -> None:
    with atomic_file(target, "wb") as f:
        np.save(f, array, allow_pickle=False)
