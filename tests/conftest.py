"""Shared fixtures: tiny random-weight model folders in the real layout, made once per run."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete tiny model folder (checkpoints, vocab, EnCodec, presets), random weights."""
    from bark_engine.testing import write_random_models

    path = tmp_path_factory.mktemp("tiny-models")
    write_random_models(path, dims="tiny", seed=0)
    return path
