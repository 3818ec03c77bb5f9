"""How far a precision's logits are from float32's, per stage, on the same inputs.

For each GPT the float32 model and the model in the precision under test see
the same tokens: a prefill of random ids, then steps teacher-forced with the
float32 model's greedy tokens (so both always predict from the same
context), and for the fine model one window per codebook. At every predicted
position we compare the two logit vectors:

- relative error  ‖l − l32‖ / ‖l32‖
- KL(p32 ‖ p) of the softmax at T = 0.7 (the sampling temperature), in nats
- top-1 agreement: the greedy token is the same

The weights are random, so these figures say how much the arithmetic moves
the logits, not how the released checkpoints sound in that precision.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import (
    CHECKPOINT_FILES,
    COARSE_VOCABS,
    CODEBOOK_SIZE,
    N_FINE_CODEBOOKS,
    SEMANTIC_VOCAB_SIZE,
)
from ..loading.checkpoints import load_checkpoint
from ..model.precision import DTYPES
from ..model.steps import Feed
from ..model.strategy import fine_runner_for, stepper_for

TEMPERATURE = 0.7
PREFILL = 256  # ids before the first compared step
STEPS = 32  # teacher-forced steps compared after the prefill
# Per causal stage: (input ids drawn from [0, n), the logits the stage samples from).
CAUSAL = {
    "semantic": (SEMANTIC_VOCAB_SIZE, slice(0, SEMANTIC_VOCAB_SIZE + 1)),  # + EOS
    "coarse": (COARSE_VOCABS["input_vocab_size"],
               slice(SEMANTIC_VOCAB_SIZE, SEMANTIC_VOCAB_SIZE + 2 * CODEBOOK_SIZE)),
}


def compare(ref: torch.Tensor, got: torch.Tensor) -> dict[str, float]:
    """ref, got (N, V) logits → the three figures, over the N positions."""
    ref, got = ref.double(), got.double()
    rel = ((got - ref).norm(dim=-1) / ref.norm(dim=-1)).mean()
    logp_ref = torch.log_softmax(ref / TEMPERATURE, -1)
    logp = torch.log_softmax(got / TEMPERATURE, -1)
    kl = (logp_ref.exp() * (logp_ref - logp)).sum(-1).mean()
    top1 = (ref.argmax(-1) == got.argmax(-1)).double().mean()
    return {"rel_err": float(rel), "kl": float(kl), "top1": float(top1), "n": ref.shape[0]}


def _causal_logits(path: Path, dtype: torch.dtype, stage: str,
                   forced: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (STEPS + 1, V) after the prefill and each step, and the ids fed
    (the greedy tokens of this run, or the float32 run's `forced` ones)."""
    stepper = stepper_for(load_checkpoint(path, "causal", dtype=dtype))
    n_ids, vocab = CAUSAL[stage]
    ids = torch.randint(0, n_ids, (PREFILL,), generator=torch.Generator().manual_seed(7))
    out, fed = [], []
    with torch.inference_mode():
        cache = stepper.new_cache(1)
        logits = stepper.advance(cache, [Feed(0, ids, fresh=True)], vocab)
        for i in range(STEPS + 1):
            out.append(logits[0])
            if i == STEPS:
                break
            token = int(forced[i]) if forced is not None else int(logits[0].argmax()) + vocab.start
            fed.append(token)
            logits = stepper.advance(cache, [Feed(0, torch.tensor([token]))], vocab)
    return torch.stack(out), torch.tensor(fed)


def _fine_logits(path: Path, dtype: torch.dtype) -> torch.Tensor:
    """Logits of every fine codebook over one window: (codebooks·positions, V)."""
    runner = fine_runner_for(load_checkpoint(path, "fine", dtype=dtype))
    gen = torch.Generator().manual_seed(8)
    window = torch.randint(0, CODEBOOK_SIZE, (1024, N_FINE_CODEBOOKS), generator=gen)
    with torch.inference_mode():
        return torch.cat([runner.logits([window], [512], k)[0]
                          for k in range(2, N_FINE_CODEBOOKS)])


def measure(models: str | Path, size: str, precisions: list[str]) -> dict[str, dict]:
    """{precision: {stage: figures}} against float32, for the models in `models`."""
    files = {k: Path(models) / v for k, v in CHECKPOINT_FILES[size].items()}
    reference = {s: _causal_logits(files[s], torch.float32, s, None) for s in CAUSAL}
    fine32 = _fine_logits(files["fine"], torch.float32)
    out: dict[str, dict] = {}
    for name in precisions:
        dtype = DTYPES[name]
        out[name] = {s: compare(reference[s][0],
                                _causal_logits(files[s], dtype, s, reference[s][1])[0])
                     for s in CAUSAL}
        out[name]["fine"] = compare(fine32, _fine_logits(files["fine"], dtype))
    return out
