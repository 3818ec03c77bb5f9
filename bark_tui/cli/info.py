"""`bark-tui info`: what this machine and install give Bark, without downloading
or generating anything.

The first questions when something is slow, silent or missing: which versions
run, which devices and precisions are fast here, whether sound can play, which
model files are already here, and where the studio keeps its files.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
from typing import Any

from bark_engine.errors import BadInputError
from bark_engine.options import EngineConfig

from ..core import locations

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


def _server_rows(table, s: dict[str, Any]) -> None:
    from rich.markup import escape

    if not s["reachable"]:
        table.add_row("server", f"[red]{escape(s['problem'])}[/]")
        return
    e, q = s["engine"], s["queue"]
    flag = " (RANDOM TEST WEIGHTS)" if e["random_weights"] else ""
    loaded = "models loaded" if s["loaded"] else "models load on the first job"
    table.add_row("server", escape(f"{s['url']} · api {s['api_version']} · {loaded}"))
    table.add_row("server runs", escape(f"{e['device']} · {e['dtype']} · {e['steps']}{flag}"))
    table.add_row("server queue", f"{q['waiting']} waiting of {q['size']} · "
                  f"{'busy' if q['running'] else 'idle'} · {q['completed']} done")


def _yes(flag: bool | None) -> str:
    return "unknown" if flag is None else ("yes" if flag else "no")


def server_info(server) -> dict[str, Any]:
    """What the server says of itself (`/v1/bark/info`), or why it cannot be reached."""
    from bark_engine.errors import BarkError

    from ..remote.http import Connection

    conn = Connection(server.url, server.key)
    try:
        conn.health()
        return {"url": server.url, "reachable": True, **conn.json("GET", "/v1/bark/info")}
    except BarkError as exc:
        return {"url": server.url, "reachable": False, "problem": str(exc)}


def run_info(args: argparse.Namespace, config: EngineConfig) -> int:
    from .args import server_choice

    info = collect_info(config)
    server = server_choice(args)
    if server is not None:
        info["server"] = server_info(server)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    c, m, a = info["compute"], info["models"], info["audio"]
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    versions = " · ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    table.add_row("versions", escape(versions))
    table.add_row("cpu", escape(f"{c['cpu']} · {c['cpu_threads']} threads · native bf16: "
                                f"{_yes(c['cpu_native_bf16'])}"))
    gpus = ", ".join(f"{g['name']} ({g['memory_gb']} GB)" for g in c["cuda"]) or "none"
    table.add_row("gpu", escape(gpus + (" · mps" if c["mps"] else "")))
    table.add_row("would run on", f"{c['device']} · {c['dtype']} · {escape(c['steps'])}")
    if c["advice"]:
        table.add_row("", f"[yellow]note: {escape(c['advice'])}[/]")
    missing = [name for name, here in m["files"].items() if not here]
    state = "all here" if m["ready"] else "missing: " + ", ".join(missing)
    flag = " (RANDOM TEST WEIGHTS)" if m["random_weights"] else ""
    table.add_row("models", escape(f"{m['source']}{flag} · {state}"))
    if not m["ready"]:
        table.add_row("", "`bark-tui download` fetches them (or pass --models DIR)")
    sizes = " · ".join(f"{p} {gb:.2f} GB" for p, gb in m["weights_gb"].items())
    table.add_row("weights", escape(f"{sizes} ({m['size']} models in memory on the CPU)"))
    table.add_row("playback", "ok" if a["playback"] else f"[yellow]{escape(a['problem'])}[/]")
    f = info["finishing"]
    if f["problem"]:
        table.add_row("files", f"[yellow]{escape(f['problem'])}[/]")
    else:
        m4b = (f"M4B/M4A via PyAV {f['m4b']}" if f["m4b"] else
               "M4B/M4A: pip install 'bark-tui[m4b]'")
        table.add_row("files", escape(f"{', '.join(f['formats'])}, Opus via libsndfile "
                                      f"{f['libsndfile']} · {m4b}"))
    ray = info["cluster"]["ray"]
    table.add_row("cluster", escape(f"Ray {ray}: render --ray [ADDRESS]" if ray else
                                    "render --ray: pip install 'bark-tui[ray]'"))
    if "server" in info:
        _server_rows(table, info["server"])
    for name, path in info["paths"].items():
        table.add_row(name, escape(path))
    for warning in info["settings_warnings"]:
        table.add_row("", f"[yellow]settings: {escape(warning)}[/]")
    Console().print(table)
    return 0
