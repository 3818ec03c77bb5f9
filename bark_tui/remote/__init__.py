"""The studio's and the CLI's side of `bark-tui serve` (stdlib HTTP, no extra needed).

- `http`: one connection's requests, server-sent events, and one-line errors.
- `engine`: `RemoteEngine`, the server behind the local `Engine`'s interface.
- `choice`: which server to use (`--server`, `BARK_TUI_SERVER`, Settings) and its key.
"""
