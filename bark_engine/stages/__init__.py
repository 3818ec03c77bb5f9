"""The token stages of Bark over rows, and how a batch runs through them.

`semantic` (text → semantic tokens), `coarse` (semantic → 2 codebooks) and
`fine` (2 → 8 codebooks) each loop over B >= 1 rows (`*_rows`, and a one-row
`generate_*` for convenience) on a step strategy (`model.steps`), drawing
from each row's own `torch.Generator`, reporting `on_step(done, total)` and
stopping with `Cancelled` when the caller's `threading.Event` is set.
`sampling` holds the pure sampling functions, `runner` the events and
timings around a stage, `pipeline` the four stages for a batch of requests.
"""

from __future__ import annotations

from .coarse import generate_coarse
from .fine import generate_fine
from .semantic import generate_semantic

__all__ = ["generate_coarse", "generate_fine", "generate_semantic"]
