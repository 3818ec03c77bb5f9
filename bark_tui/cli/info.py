"""`bark-tui info`: what this machine and install give Bark, without downloading
or generating anything.

The first questions when something is slow, silent or missing: which versions
run, which devices and precisions are fast here, whether sound can play, which
model files are already here, and where the studio keeps its files.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bark_engine.options import EngineConfig

from ..core.facts import collect_info


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
