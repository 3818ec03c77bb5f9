"""A tiny local stand-in for the Hugging Face hub's file endpoint.

`huggingface_hub.hf_hub_download(..., endpoint=URL)` needs only two calls,
`HEAD` and `GET /{repo}/resolve/{revision}/{path}`, with the headers the hub
sends (`X-Repo-Commit`, `ETag`, `Content-Length`). Serving a folder that way
lets tests run the real download path — cache layout, progress bars, error
mapping, offline re-use — on a machine with no network.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # every repo is at this one commit
CHUNK = 1 << 16


def _resolve(repos: Mapping[str, Path], url_path: str) -> tuple[str, Path | None]:
    """(repo, file) for `/{owner}/{name}/resolve/{rev}/{path}`; file None when absent."""
    parts = unquote(url_path).strip("/").split("/")
    if len(parts) < 5 or parts[2] != "resolve" or parts[3] not in ("main", COMMIT):
        return "", None
    repo = "/".join(parts[:2])
    root = repos.get(repo)
    rel = parts[4:]
    if root is None or any(p in ("", ".", "..") for p in rel):
        return repo, None
    path = root.joinpath(*rel)
    if not path.resolve().is_relative_to(root.resolve()) or not path.is_file():
        return repo, None
    return repo, path


class _Handler(BaseHTTPRequestHandler):
    repos: Mapping[str, Path] = {}
    requests: list[tuple[str, str]]  # (method, path) in order, for tests to inspect

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass  # keep test output clean

    def _answer(self, with_body: bool) -> None:
        url_path = urlparse(self.path).path
        self.requests.append((self.command, url_path))
        repo, path = _resolve(self.repos, url_path)
        if path is None:
            code = 404
            self.send_response(code)
            error = "EntryNotFound" if repo in self.repos else "RepoNotFound"
            self.send_header("X-Error-Code", error)
            if repo in self.repos:
                self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            for start in range(0, len(data), CHUNK):
                self.wfile.write(data[start : start + CHUNK])

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(with_body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(with_body=True)


@contextmanager
def serve_hub(repos: Mapping[str, str | Path]) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Serve `{repo_id: folder}` on 127.0.0.1; yield (endpoint URL, request log)."""
    log: list[tuple[str, str]] = []
    handler = type(
        "Handler", (_Handler,), {"repos": {k: Path(v) for k, v in repos.items()}, "requests": log}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
