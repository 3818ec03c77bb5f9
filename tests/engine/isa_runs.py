"""Running a kernel test on each instruction set this CPU has (the `each_isa`
fixture lives in this folder's conftest)."""

from __future__ import annotations

from contextlib import contextmanager

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


@contextmanager
def amx(on: bool):
    """Narrow rows on AMX tiles or not, inside the block (where the CPU has them)."""
    before = kernels.amx()
    if kernels.amx_here():
        kernels.use_amx(on)
    try:
        yield
    finally:
        if kernels.amx_here():
            kernels.use_amx(before)
