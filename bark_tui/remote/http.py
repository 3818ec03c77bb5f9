"""A small HTTP client for `bark-tui serve` (stdlib only: the studio needs no extra).

Each call opens its own connection, so a progress stream and a cancel can run
at once from two threads. Failures become one-line `RemoteError`s that say
what to do: no server there, a wrong key, an old server, a dropped link.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from bark_engine.errors import BarkError

from ..service.wire import API_VERSION, DEFAULT_PORT

TIMEOUT_S = 30.0  # one request, or the gap between two events (the server pings every 10 s)
TUNNEL_HINT = f"ssh -L {DEFAULT_PORT}:localhost:{DEFAULT_PORT} gpu-box"


class RemoteError(BarkError):
    """The server could not be used for this request (its message, or why not)."""


class ConnectionLost(RemoteError):
    """The server went away in the middle of a request."""


@dataclass(frozen=True)
class ServerEvent:
    seq: int
    name: str
    data: dict[str, Any]


def check_url(url: str) -> str:
    """The server's base URL, normalised; RemoteError when it cannot be one."""
    text = (url or "").strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"not a server URL: {url!r} (e.g. http://127.0.0.1:{DEFAULT_PORT})")
    if parts.query or parts.fragment:
        raise RemoteError(f"a server URL has no query or fragment: {url!r}")
    try:
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError:
        raise RemoteError(f"bad port in {url!r}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


class Connection:
    """Requests to one server with an optional key."""

    def __init__(self, url: str, key: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.url = check_url(url)
        parts = urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path
        self.key = key
        self.timeout = timeout

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]):
        conn = self._connect()
        hdrs = {"Accept": "*/*", **headers}
        if self.key:
            hdrs["Authorization"] = f"Bearer {self.key}"
        try:
            conn.request(method, self._prefix + path, body=body, headers=hdrs)
            return conn, conn.getresponse()
        except ConnectionRefusedError:
            conn.close()
            raise RemoteError(f"no Bark server at {self.url} (is `bark-tui serve` running? "
                              f"for one on another machine: {TUNNEL_HINT})") from None
        except socket.gaierror:
            conn.close()
            raise RemoteError(f"cannot resolve the host of {self.url}") from None
        except TimeoutError:
            conn.close()
            raise RemoteError(f"{self.url} did not answer within {self.timeout:g} s") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            conn.close()
            raise ConnectionLost(f"lost the connection to {self.url}: {exc}") from None

    def request(self, method: str, path: str, payload: Any = None,
                body: bytes | None = None) -> bytes:
        """The response body of a 2xx answer; RemoteError with the server's message else."""
        headers = {}
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        conn, resp = self._send(method, path, body, headers)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectionLost(f"lost the connection to {self.url}: {exc}") from None
        finally:
            conn.close()
        if resp.status >= 400:
            raise self._error(resp.status, data)
        return data

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        data = self.request(method, path, payload)
        try:
            return json.loads(data)
        except ValueError:
            raise RemoteError(f"{self.url}{path} did not answer with JSON; is it a bark-tui "
                              "server?") from None

    def events(self, path: str) -> Iterator[ServerEvent]:
        """Server-sent events until the server ends the stream. ConnectionLost when it
        stops answering or the link drops."""
        conn, resp = self._send("GET", path, None, {"Accept": "text/event-stream"})
        try:
            if resp.status >= 400:
                raise self._error(resp.status, resp.read())
            seq, name, data = 0, "message", []
            while True:
                try:
                    raw = resp.readline()
                except (OSError, http.client.HTTPException) as exc:
                    raise ConnectionLost(f"lost the connection to {self.url}: {exc}") from None
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        try:
                            body = json.loads("\n".join(data))
                        except ValueError:
                            raise RemoteError(f"{self.url} sent an event that is not JSON; "
                                              "is it a bark-tui server?") from None
                        yield ServerEvent(seq, name, body)
                    name, data = "message", []
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "id" and value.isdigit():
                        seq = int(value)
                    elif field == "event":
                        name = value
                    elif field == "data":
                        data.append(value)
        finally:
            conn.close()

    def _error(self, status: int, data: bytes) -> RemoteError:
        try:
            message = json.loads(data)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = data[:200].decode("utf-8", "replace").strip() or f"HTTP {status}"
        if status == 401:
            how = ("the key was not accepted" if self.key else "the server wants a key")
            return RemoteError(f"{self.url}: {how} (--api-key-file F, or BARK_TUI_API_KEY)")
        if status == 503:
            return RemoteError(f"{self.url} is busy: {message}")
        return RemoteError(message)

    def health(self) -> dict[str, Any]:
        """The server's /health, checked to be a bark-tui server speaking our API."""
        info = self.json("GET", "/health")
        if not isinstance(info, dict) or info.get("app") != "bark-tui":
            raise RemoteError(f"{self.url} is not a bark-tui server")
        version = info.get("api_version")
        if version != API_VERSION:
            raise RemoteError(f"the server at {self.url} speaks API version {version}; this "
                              f"bark-tui speaks {API_VERSION}: run the same bark-tui version "
                              "on both machines")
        return info


def path_part(name: str) -> str:
    return quote(name, safe="")
