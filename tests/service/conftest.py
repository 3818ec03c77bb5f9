"""A real `bark-tui serve` on 127.0.0.1 (tiny random weights) per test module, and a
local engine on the same folder to compare its audio with."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from bark_tui.service.process import ServerProcess

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SHORT = {"max_duration_s": 1.0}  # tiny random models never draw EOS: cap each segment


@pytest.fixture(scope="module")
def server(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory):
    with ServerProcess(tiny_models, tmp_path_factory.mktemp("serve-home")) as proc:
        yield proc


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "bark.key"
    path.write_text(secrets.token_urlsafe(24) + "\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def keyed_server(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory, key_file: Path):
    """With a key and room for one waiting job."""
    with ServerProcess(tiny_models, tmp_path_factory.mktemp("keyed-home"),
                       "--api-key-file", str(key_file), "--queue-size", "1") as proc:
        yield proc


@pytest.fixture(scope="module")
def local_engine(tiny_models: Path):
    from bark_engine.engine import Engine
    from bark_engine.options import EngineConfig

    return Engine(EngineConfig(models=str(tiny_models), device="cpu"))
