"""Running a kernel test on each instruction set this CPU has (the `each_isa`
fixture lives in this folder's conftest)."""

from __future__ import annotations

from bark_engine.model import kernels


def isas() -> list[str]:
    """Every instruction set this CPU runs, up to its best."""
    order = ["generic", "avx2", "avx512"]
    return order[: order.index(kernels.isa()) + 1]


def run_isa(name: str, fn):
    before = kernels.isa()
    kernels.set_isa(name)
    try:
        return fn()
    finally:
        kernels.set_isa(before)
