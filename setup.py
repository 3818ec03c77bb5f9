"""Builds the optional CPU kernels (bark_engine/model/_kernels.c) at install time.

Everything else is in pyproject.toml. The kernels are plain C (no torch
headers, so no torch is needed to build them). A compiler without OpenMP gets
a single-threaded build; no compiler at all, or any other build failure,
leaves the pure-torch path, and `bark-tui info` says which one runs.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

FLAGS = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno"]


class OptionalKernels(build_ext):
    """Try with OpenMP, then without; never fail the install over the kernels."""

    def build_extension(self, ext):
        for extra in (["-fopenmp"], []):
            ext.extra_compile_args = FLAGS + extra
            ext.extra_link_args = extra
            try:
                super().build_extension(ext)
                return
            except Exception as exc:  # noqa: BLE001 - any compiler or linker failure
                print(f"bark-tui: building {ext.name} with {extra or 'no OpenMP'} failed: {exc}")
        print("bark-tui: the CPU kernels were not built; the engine uses its pure-torch path")


setup(
    ext_modules=[Extension("bark_engine.model._kernels", ["bark_engine/model/_kernels.c"],
                           libraries=["m"], optional=True)],
    cmdclass={"build_ext": OptionalKernels},
)
