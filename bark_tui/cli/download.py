"""`bark-tui download`: fetch everything into the cache now, with progress on stderr."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from bark_engine.events import Event, LoadProgress
from bark_engine.options import EngineConfig


class DownloadBars:
    """One overall bar (files) and one bar for the file being downloaded (bytes)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<40}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
        )
        self.files: TaskID | None = None
        self.current: dict[str, TaskID] = {}

    def __call__(self, event: Event) -> None:
        if not isinstance(event, LoadProgress):
            return
        p = self.progress
        if event.what == "download":
            if self.files is None:
                self.files = p.add_task("files", total=event.total)
            p.update(self.files, completed=event.done,
                     description=f"files: {event.message}"[:40])
            return
        task = self.current.get(event.what)
        if task is None:
            task = self.current[event.what] = p.add_task(event.what[-40:], total=event.total)
        p.update(task, completed=event.done, total=event.total)


def run_download(args: argparse.Namespace, config: EngineConfig) -> int:
    from bark_engine.loading.source import ModelSource, download

    err = Console(stderr=True)
    bars = DownloadBars(err)
    source = ModelSource(config.models, size=config.size, offline=config.offline,
                         cache_dir=config.cache_dir, on_event=bars)
    with bars.progress:
        paths = download(source, presets=[] if args.no_presets else None)
    where = source.root if source.is_local else "the Hugging Face cache"
    err.print(f"{len(paths)} files ready in {where} ({source.model_id})", highlight=False)
    return 0
