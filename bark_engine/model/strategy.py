"""Which step strategy a model runs with, chosen once per stage run (see `steps`)."""

from __future__ import annotations

from .cuda_graphs import GraphStepper
from .gpt import GPT, FineGPT
from .kernel_step import KernelFine, KernelStepper
from .precision import is_packed
from .steps import EagerFine, EagerStepper, FineRunner, Stepper


def _device(model) -> str:
    return next(model.parameters()).device.type


def stepper_for(model: GPT, cuda_graphs: bool = True) -> Stepper:
    """Packed on the CPU: the kernels; on a CUDA GPU: graphs (unless turned off);
    anything else: the eager model."""
    if _device(model) == "cpu" and is_packed(model):
        return KernelStepper(model)
    if _device(model) == "cuda" and cuda_graphs:
        return GraphStepper(model)
    return EagerStepper(model)


def fine_runner_for(model: FineGPT) -> FineRunner:
    if _device(model) == "cpu" and is_packed(model):
        return KernelFine(model)
    return EagerFine(model)
