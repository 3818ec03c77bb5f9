"""`bark-tui serve`: check the set-up, build one engine, run uvicorn until stopped.

Refusals come before anything loads: a non-loopback address without a key,
a key file others can read, a missing extra. Each is one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from bark_engine.config import MAX_BATCH
from bark_engine.errors import BadInputError
from bark_engine.options import EngineConfig

from .config import DEFAULT_HOST, ServeConfig, check_bind, read_key_file
from .wire import DEFAULT_PORT

INSTALL_HINT = "pip install 'bark-tui[serve]'"


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    from .config import DEFAULT_KEEP_MINUTES, DEFAULT_QUEUE_SIZE

    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this machine only; "
                   "any other address needs --api-key-file)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one and prints it)")
    p.add_argument("--api-key-file", type=Path, metavar="F",
                   help="require `Authorization: Bearer <key>` with the key in F "
                   "(a file only you can read: chmod 600)")
    p.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, metavar="N",
                   help=f"jobs that may wait behind the running one (default "
                   f"{DEFAULT_QUEUE_SIZE}); more get 503 with Retry-After")
    p.add_argument("--keep-minutes", type=float, default=DEFAULT_KEEP_MINUTES, metavar="M",
                   help=f"how long finished jobs' audio stays fetchable (default "
                   f"{DEFAULT_KEEP_MINUTES:g})")
    p.add_argument("--batch", type=int, metavar="N",
                   help="rows of waiting requests made as one engine batch (default: the "
                   "engine's, 4 on a CPU, 8 on a GPU; 1: one request at a time); a request's "
                   "audio is the same whatever it shares a batch with")
    p.add_argument("--preload", action="store_true",
                   help="load the models at start instead of on the first request")
    p.add_argument("--voice-map", type=Path, metavar="F.json",
                   help="OpenAI voice names to presets or My-voices names, e.g. "
                   "{\"nova\": \"v2/de_speaker_3\"} (overrides the built-in table)")
    p.add_argument("--voices-dir", type=Path, metavar="DIR",
                   help="the server's own My voices (default: this user's)")


def serve_config(args: argparse.Namespace) -> ServeConfig:
    from .speech import load_voice_map

    key = read_key_file(args.api_key_file) if args.api_key_file else None
    check_bind(args.host, key)
    if not 0 <= args.port <= 65535:
        raise BadInputError(f"port {args.port} is not 0..65535")
    if args.queue_size < 1:
        raise BadInputError("--queue-size must be at least 1")
    if args.keep_minutes <= 0:
        raise BadInputError("--keep-minutes must be more than 0")
    if args.batch is not None and not 1 <= args.batch <= MAX_BATCH:
        raise BadInputError(f"--batch must be 1..{MAX_BATCH}")
    voice_map = load_voice_map(args.voice_map) if args.voice_map else {}
    return ServeConfig(host=args.host, port=args.port, api_key=key,
                       queue_size=args.queue_size, keep_minutes=args.keep_minutes,
                       voice_map=voice_map, batch_rows=args.batch)


def check_port_free(host: str, port: int) -> None:
    """One line instead of uvicorn's error when the address is taken (checked before
    the models load; the port is bound for real a moment later)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            raise BadInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                                "(another bark-tui serve? pick another --port)") from None


def run_serve(args: argparse.Namespace, engine_config: EngineConfig) -> int:
    config = serve_config(args)  # refusals first: nothing loads for a bad set-up
    check_port_free(config.host, config.port)
    try:
        import uvicorn

        from .app import create_app
    except ImportError as exc:
        raise BadInputError(f"serving needs the serve extra ({exc.name} is missing): "
                            f"{INSTALL_HINT}") from None
    from bark_engine.engine import Engine

    from ..core.locations import user_voices_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    engine = Engine(engine_config, user_voices_dir=args.voices_dir or user_voices_dir())
    app = create_app(engine, config)
    app.state.preload = args.preload
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=5))
    _announce(server, config, engine)
    server.run()
    return 0


def _announce(server, config: ServeConfig, engine) -> None:
    """Print the address once uvicorn has bound it (port 0 finds out which)."""
    log = logging.getLogger("bark_tui.serve")
    startup = server.startup

    async def started(*a, **kw):
        await startup(*a, **kw)
        port = config.port
        for s in getattr(server, "servers", []) or []:
            for sock in s.sockets:
                port = sock.getsockname()[1]
        host = f"[{config.host}]" if ":" in config.host else config.host
        key = "key required" if config.api_key else "no key: this machine only"
        noise = " · RANDOM TEST WEIGHTS" if engine.random_weights else ""
        log.info("serving Bark on http://%s:%d · %s · %s models · %s · %s%s", host, port, key,
                 engine.config.size, engine.device, engine.dtype_name, noise)
        print(f"bark-tui serve: listening on http://{host}:{port}", flush=True)

    server.startup = started
