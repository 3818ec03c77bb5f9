"""Shared fixtures: tiny random-weight model folders in the real layout, made once per run."""

from __future__ import annotations

import os
from pathlib import Path

# OpenMP threads that spin while waiting collapse torch's speed as soon as
# another thread (the app's UI loop, pytest itself) wants a core: tiny-model
# decoding fell from ~370 to ~11 tokens/s on 2 cores. Sleeping waits avoid it.
# Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete tiny model folder (checkpoints, vocab, EnCodec, presets), random weights."""
    from bark_engine.testing import write_random_models

    path = tmp_path_factory.mktemp("tiny-models")
    write_random_models(path, dims="tiny", seed=0)
    return path
