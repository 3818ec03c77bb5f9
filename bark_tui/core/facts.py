"""What this machine and install give Bark, gathered without downloading or generating:
versions, devices and precisions, sound, model files here, the studio's folders.

One source for `bark-tui info` (which prints them) and the service's ``/info``
(which serves them); torch and the other heavy libraries are imported only while
the facts are gathered.
"""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

from bark_engine.errors import BadInputError
from bark_engine.options import EngineConfig

from . import locations

PACKAGES = ("bark-tui", "torch", "transformers", "huggingface-hub", "textual", "sounddevice")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    """The CPU's model name where Linux says it, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def compute_info(config: EngineConfig) -> dict[str, Any]:
    import torch

    from bark_engine.engine import resolve_device
    from bark_engine.model import kernels
    from bark_engine.model.precision import dtype_name, native_bf16, precision_advice, resolve_dtype

    gpus = [
        {"name": torch.cuda.get_device_name(i),
         "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
        for i in range(torch.cuda.device_count())
    ] if torch.cuda.is_available() else []
    device = resolve_device(config.device)
    status = kernels.status()
    with_kernels = device.type == "cpu" and config.kernels and status.available
    try:
        dtype = resolve_dtype(config.dtype, device, with_kernels)
    except ValueError as e:  # int8 asked for on a GPU
        raise BadInputError(str(e)) from None
    if device.type == "cpu":
        steps = status.describe() if config.kernels else "pure-torch fallback (--no-kernels)"
    else:
        steps = "CUDA graphs" if device.type == "cuda" and config.cuda_graphs else "eager torch"
    return {
        "cpu": _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_native_bf16": native_bf16(),
        "cuda": gpus,
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "device": str(device),
        "dtype": dtype_name(dtype),
        "advice": precision_advice(dtype, device, with_kernels),
        "cpu_kernels": {"built": status.isa is not None or status.reason.startswith("built"),
                        "available": status.available, "isa": status.isa,
                        "threads": status.threads or None, "problem": status.reason or None},
        "steps": steps,
    }


def models_info(config: EngineConfig) -> dict[str, Any]:
    from bark_engine.loading.source import STAGES, ModelSource
    from bark_engine.model.footprint import weights_bytes
    from bark_engine.model.precision import DTYPES

    source = ModelSource(config.models, size=config.size, offline=True, cache_dir=config.cache_dir)
    relpaths = [source.checkpoint_relpath(stage) for stage in STAGES] + [source.vocab_relpath]
    files = {relpath: source.has(relpath) for relpath in relpaths}
    files["encodec"] = source.has_codec()
    return {
        "source": source.model_id,
        "size": config.size,
        "local_folder": source.is_local,
        "random_weights": source.random_weights,
        "files": files,
        "ready": all(files.values()),
        # what the three GPTs take in memory on the CPU, per precision (the real dims)
        "weights_gb": {p: round(weights_bytes(config.size, p) / 1e9, 2) for p in DTYPES},
    }


def _audio() -> dict[str, Any]:
    from ..core.player import Player

    player = Player()
    try:
        reason = player.unavailable_reason
    finally:
        player.close()
    return {"playback": reason is None, "problem": reason}


def finishing_info() -> dict[str, Any]:
    """Which finished formats this install can write, and through what."""
    out: dict[str, Any] = {"libsndfile": None, "m4b": None, "problem": None}
    try:
        import soundfile

        out["libsndfile"] = soundfile.__libsndfile_version__
        majors = soundfile.available_formats()
        out["formats"] = [f for f in ("WAV", "FLAC", "MP3", "OGG") if f in majors]
    except (ImportError, OSError) as exc:
        out["problem"] = f"soundfile is not usable ({exc}); only WAV can be written"
    out["m4b"] = _version("av")
    return out


def cluster_info() -> dict[str, Any]:
    """Whether `render --ray` can run here (the Ray extra's version, without importing it)."""
    return {"ray": _version("ray")}


def collect_info(config: EngineConfig) -> dict[str, Any]:
    """Everything `bark-tui info` reports, as plain data: for the engine the studio
    would build (the command line's choices over the saved settings)."""
    from ..core.settings import load_settings, merge_engine_config

    settings, warnings = load_settings(locations.settings_path())
    config = merge_engine_config(config, settings)
    return {
        "settings_warnings": warnings,
        "versions": versions_info(),
        "compute": compute_info(config),
        "models": models_info(config),
        "audio": _audio(),
        "finishing": finishing_info(),
        "cluster": cluster_info(),
        "paths": {
            "settings": str(locations.settings_path()),
            "history": str(locations.history_db_path()),
            "takes": str(locations.takes_dir()),
            "voices": str(locations.user_voices_dir()),
            "exports": str(locations.default_output_dir()),
        },
    }


def versions_info() -> dict[str, str | None]:
    return {"python": platform.python_version(), **{name: _version(name) for name in PACKAGES}}
