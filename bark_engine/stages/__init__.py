"""The three token stages of Bark, one module each; this module gathers them.

`generate_semantic` (text → semantic tokens), `generate_coarse` (semantic →
2 codebooks) and `generate_fine` (2 → 8 codebooks) take already-built models
and plain numpy inputs, draw from the caller's `torch.Generator`, report
progress through `on_step(done, total)` and stop with `Cancelled` when the
caller's `threading.Event` is set. The `Engine` (pipeline) chains them.
"""

from __future__ import annotations

from .coarse import generate_coarse
from .fine import generate_fine
from .semantic import generate_semantic

__all__ = ["generate_coarse", "generate_fine", "generate_semantic"]
