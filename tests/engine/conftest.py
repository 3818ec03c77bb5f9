"""Fixtures of the engine's kernel tests."""

from __future__ import annotations

import pytest

from bark_engine.model import kernels

from .isa_runs import isas


@pytest.fixture
def each_isa():
    """Every instruction set this CPU runs; restores the fastest one afterwards."""
    best = kernels.isa()
    yield isas()
    kernels.set_isa(best)
