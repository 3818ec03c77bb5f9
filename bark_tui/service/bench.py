"""What the service costs: requests per minute and time to the first audio byte, for 1, 2
and 4 concurrent clients, against the same requests made directly on a local engine.

    python -m bark_tui.service.bench [--dims tiny,small] [--clients 1,2,4] [--requests 4]
                                     [--rounds 2] [--seconds 1.0] [--models DIR]

Each request is an OpenAI speech request (`pcm`, streamed) for a short text with its
own seed, capped at `--seconds` of audio so random weights (which never stop by
themselves) make the same amount of work each time. The direct run makes the same
texts with `ScriptRenderer` in this process. Rounds interleave the variants (direct,
then each client count) because the machine is shared; best and median are printed.
The server has one engine: several clients share its throughput (waiting one-segment
requests are made as one batch of rows) and wait their turn, so time to first byte
grows with the queue.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

TEXT = "The quick brown fox jumps over the lazy dog, number {i}."


@dataclass
class Run:
    requests: int
    wall_s: float
    first_byte_s: list[float]

    @property
    def per_minute(self) -> float:
        return 60.0 * self.requests / self.wall_s


def _speech(url: str, i: int, seconds: float) -> tuple[float, int]:
    """One streamed request: (seconds to the first audio byte, bytes)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    body = json.dumps({"model": "bark", "input": TEXT.format(i=i), "voice": "alloy",
                       "response_format": "pcm", "stream_format": "audio",
                       "bark": {"seed": i, "options": {"max_duration_s": seconds}}})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
    first = resp.read(1)
    ttfb = time.perf_counter() - t0
    total = len(first) + len(resp.read())
    conn.close()
    return ttfb, total


def served(url: str, clients: int, requests: int, seconds: float, base: int) -> Run:
    firsts: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for k in range(requests):
            ttfb, _n = _speech(url, base + c * requests + k, seconds)
            with lock:
                firsts.append(ttfb)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Run(clients * requests, time.perf_counter() - t0, firsts)


def direct(engine, requests: int, seconds: float, base: int) -> Run:
    from bark_engine.options import GenerationOptions
    from bark_engine.scripts.parse import parse_script
    from bark_engine.scripts.render import RenderOptions, ScriptRenderer
    from bark_engine.scripts.script import ScriptOptions

    from .speech import OPENAI_VOICES

    firsts = []
    t0 = time.perf_counter()
    for k in range(requests):
        voice = OPENAI_VOICES["alloy"]
        start = time.perf_counter()
        script = parse_script(TEXT.format(i=base + k), ScriptOptions(default_voice=voice),
                              engine.count_tokens)
        ScriptRenderer(engine, RenderOptions(GenerationOptions(max_duration_s=seconds),
                                             seed=base + k, default_voice=voice)).render(script)
        firsts.append(time.perf_counter() - start)  # one segment: its audio is the first byte
    return Run(requests, time.perf_counter() - t0, firsts)


def _fmt(runs: list[Run]) -> str:
    rpm = [r.per_minute for r in runs]
    ttfb = [statistics.median(r.first_byte_s) for r in runs]
    return (f"{max(rpm):7.1f} {statistics.median(rpm):7.1f}   "
            f"{min(ttfb):6.2f} {statistics.median(ttfb):6.2f}")


def bench_dims(dims: str, models: Path | None, clients: list[int], requests: int,
               rounds: int, seconds: float, threads: int | None) -> list[str]:
    import torch

    from bark_engine.engine import Engine
    from bark_engine.options import EngineConfig
    from bark_engine.testing import write_random_models

    from .process import ServerProcess

    work = Path(tempfile.mkdtemp(prefix=f"bark-serve-bench-{dims}-"))
    if models is None:
        models = work / "models"
        write_random_models(models, dims=dims, seed=0)
    if threads:
        torch.set_num_threads(threads)
    engine = Engine(EngineConfig(models=str(models), device="cpu", threads=threads))
    engine.load()
    extra = ("--threads", str(threads)) if threads else ()
    results: dict[str, list[Run]] = {"direct": [], **{f"served x{c}": [] for c in clients}}
    with ServerProcess(models, work / "home", *extra, "--preload",
                       "--queue-size", str(max(clients) + 1)) as server:
        _speech(server.url, 10_000, seconds)  # warm: the server's first job loads nothing now
        direct(engine, 1, seconds, 10_000)
        for r in range(rounds):
            base = 1000 * (r + 1)
            results["direct"].append(direct(engine, requests, seconds, base))
            for c in clients:
                results[f"served x{c}"].append(served(server.url, c, requests, seconds, base))
            print(f"  {dims}: round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    base_rpm = max(r.per_minute for r in results["direct"])
    lines = [f"{dims} dims · {requests} requests per client · {seconds:g} s of audio each · "
             f"{rounds} rounds · {engine.model_id} · RANDOM WEIGHTS",
             "variant        req/min best/median   first byte s best/median   vs direct"]
    for name, runs in results.items():
        ratio = max(r.per_minute for r in runs) / base_rpm
        lines.append(f"{name:<14} {_fmt(runs)}        {ratio:5.2f}x")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bark_tui.service.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dims", default="tiny,small", help="tiny, small or both (random weights)")
    p.add_argument("--models", type=Path, help="a model folder instead of random weights")
    p.add_argument("--clients", default="1,2,4")
    p.add_argument("--requests", type=int, default=4, help="requests per client per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=1.0, help="audio per request")
    p.add_argument("--threads", type=int, help="torch threads, here and in the server")
    args = p.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    for dims in args.dims.split(","):
        lines = bench_dims(dims.strip(), args.models, clients, args.requests, args.rounds,
                           args.seconds, args.threads)
        print("\n".join(lines) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
