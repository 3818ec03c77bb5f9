"""The two engines under test, each behind the same small interface.

`Runner.load()` is timed as the load (after `preload()` has imported the
modules it needs: load is reading weights and building models); then each
stage method does the fixed work of `work.Work` on the fixed `StageInputs`
and returns its output, whose size is checked so neither engine can skip work.

- `OursRunner`: `Engine.load()` from the folder (memory-mapped checkpoints,
  tokenizer, EnCodec), then the stage functions the `Engine` itself calls.
- `PortRunner`: transformers' Bark port. The same checkpoint files are
  memory-mapped (`torch.load(mmap=True, weights_only=True)`), the port's
  three models are built on the meta device and the tensors assigned under
  the port's names (what `from_pretrained` does with its own files), EnCodec
  comes from `EncodecModel.from_pretrained`, and the tokenizer is loaded as
  ours is. Stages call the port's own `generate` methods and
  `BarkModel.codec_decode`, with the generation configs `BarkModel.generate`
  would build, set to sample at the same temperatures.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..config import COARSE_RATE_HZ, N_FINE_CODEBOOKS, SAMPLE_RATE
from .work import StageInputs, Work


def _check(stage: str, got: tuple[int, ...], want: tuple[int, ...]) -> None:
    if tuple(got) != tuple(want):
        raise RuntimeError(f"{stage}: expected output shape {want}, got {tuple(got)}")


class Runner:
    """Loads one engine and runs each stage of the fixed work."""

    name = ""

    def __init__(
        self,
        models: str,
        size: str,
        work: Work,
        inputs: StageInputs,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        self.models = models
        self.size = size
        self.work = work
        self.inputs = inputs
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        self.generator = torch.Generator(device=self.device)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def warm_up(self, stages: list[str]) -> None:
        """A few tokens of each stage but fine, untimed by the stage rows: thread
        pools, first touch of the mapped weights and one-time weight layouts
        happen here, not in the first stage measured. (Fine always runs a full
        1024-frame window, so a warm-up would cost as much as the stage.)"""
        full_work, full_inputs = self.work, self.inputs
        x = full_inputs
        self.work = replace(full_work, semantic_tokens=2)
        n = self.work.coarse_frames
        self.inputs = replace(
            x, semantic=x.semantic[:2], coarse=x.coarse[:, :n], fine=x.fine[:, :n]
        )
        try:
            for stage in stages:
                if stage != "fine":
                    self.reseed(0)
                    self.run(stage)
        finally:
            self.work, self.inputs = full_work, full_inputs

    def preload(self) -> None:
        """Import what `load` needs, so the timed load is reading weights and building models."""

    def load(self) -> None:
        raise NotImplementedError

    def parts(self, stage: str) -> dict[str, float]:
        """Seconds of parts of the last `stage` run, where the engine can tell them."""
        return {}

    def run(self, stage: str) -> None:
        """Run one stage of the work and check the size of its output."""
        w, x = self.work, self.inputs
        frames = w.coarse_frames
        if stage == "semantic":
            _check(stage, self.semantic().shape, (w.semantic_tokens,))
        elif stage == "coarse":
            _check(stage, self.coarse().shape, (2, frames))
        elif stage == "fine":
            out = self.fine()
            _check(stage, out.shape, (N_FINE_CODEBOOKS, frames))
            if not np.array_equal(out[:2], x.coarse):
                raise RuntimeError("fine: the coarse rows changed")
        elif stage == "decode":
            samples = frames * SAMPLE_RATE // COARSE_RATE_HZ
            _check(stage, self.decode().shape, (samples,))
        else:
            raise ValueError(f"unknown stage {stage!r}")

    def semantic(self) -> np.ndarray:
        raise NotImplementedError

    def coarse(self) -> np.ndarray:
        raise NotImplementedError

    def fine(self) -> np.ndarray:
        raise NotImplementedError

    def decode(self) -> np.ndarray:
        raise NotImplementedError


class OursRunner(Runner):
    name = "ours"

    def preload(self) -> None:
        from transformers import BertTokenizerFast, EncodecModel  # noqa: F401

        from .. import engine  # noqa: F401
        from ..stages import coarse, fine, semantic  # noqa: F401

    def load(self) -> None:
        from ..engine import Engine
        from ..options import EngineConfig

        self.engine = Engine(
            EngineConfig(
                models=self.models, size=self.size, device=str(self.device),
                dtype=str(self.dtype).removeprefix("torch."),
            )
        )
        self.engine.load()
        self.stages = self.engine.stage_models()  # the step strategies `generate` uses
        self.coarse_parts: dict[str, float] = {}

    def parts(self, stage: str) -> dict[str, float]:
        """Seconds of the last `stage` run by kind of call (coarse: prefills, steps)."""
        if stage != "coarse":
            return {}
        return {f"coarse_{k}": self.coarse_parts[k] for k in ("prefills", "steps")}

    def semantic(self) -> np.ndarray:
        from ..stages.semantic import generate_semantic

        return generate_semantic(
            self.stages.semantic.model,
            self.inputs.text_ids,
            self.inputs.semantic_prompt,
            temperature=self.work.text_temp,
            max_steps=self.work.semantic_tokens,
            allow_early_stop=False,
            generator=self.generator,
            stepper=self.stages.semantic,
        )

    def coarse(self) -> np.ndarray:
        from ..stages.coarse import generate_coarse
        from .timed import timed_calls

        with timed_calls(self.stages.coarse, self.device) as self.coarse_parts:
            return generate_coarse(
                self.stages.coarse.model,
                self.inputs.semantic,
                self.inputs.semantic_prompt,
                self.inputs.coarse_prompt,
                temperature=self.work.waveform_temp,
                generator=self.generator,
                stepper=self.stages.coarse,
            )

    def fine(self) -> np.ndarray:
        from ..stages.fine import generate_fine

        return generate_fine(
            self.stages.fine.model,
            self.inputs.coarse,
            self.inputs.fine_prompt,
            temperature=self.work.fine_temp,
            generator=self.generator,
            runner=self.stages.fine,
        )

    def decode(self) -> np.ndarray:
        return self.engine.decode(self.inputs.fine)


class PortRunner(Runner):
    name = "port"

    def preload(self) -> None:
        from transformers import BarkModel, BertTokenizerFast, EncodecModel  # noqa: F401
        from transformers.models.bark import generation_configuration_bark  # noqa: F401

        from ..loading import checkpoints, codec  # noqa: F401
        from ..testing import port  # noqa: F401

    def load(self) -> None:
        from transformers.models.bark.generation_configuration_bark import (
            BarkCoarseGenerationConfig,
            BarkFineGenerationConfig,
            BarkSemanticGenerationConfig,
        )

        from ..config import GPTConfig
        from ..loading.checkpoints import COMPILED_PREFIX, load_tokenizer, safe_torch_load
        from ..loading.codec import load_codec
        from ..loading.source import ModelSource
        from ..testing.port import port_from_state_dict

        source = ModelSource(self.models, size=self.size)
        self.tokenizer = load_tokenizer(source.fetch(source.vocab_relpath))
        ports = {}
        for stage in ("semantic", "coarse", "fine"):
            ckpt = safe_torch_load(source.fetch(source.checkpoint_relpath(stage)))
            cfg = GPTConfig.from_model_args(ckpt["model_args"])
            state = {k.removeprefix(COMPILED_PREFIX): v for k, v in ckpt["model"].items()}
            del ckpt
            port = port_from_state_dict(state, cfg, stage).to(self.device, self.dtype)
            port.requires_grad_(False)
            ports[stage] = port
        self.ports = ports
        self.codec = load_codec(source.codec_path()).to(self.device)
        self.config_classes = (
            BarkSemanticGenerationConfig, BarkCoarseGenerationConfig, BarkFineGenerationConfig
        )

    @property
    def sem_cfg(self):
        n = self.work.semantic_tokens
        # Early stop off, as ours: EOS can't be drawn before n new tokens.
        return self.config_classes[0](
            do_sample=True, temperature=self.work.text_temp, max_new_tokens=n, min_new_tokens=n,
            min_eos_p=None,
        )

    @property
    def coarse_cfg(self):
        return self.config_classes[1](do_sample=True, temperature=self.work.waveform_temp)

    @property
    def fine_cfg(self):
        return self.config_classes[2](temperature=self.work.fine_temp)

    def _history(self) -> dict[str, torch.Tensor] | None:
        x = self.inputs
        if x.semantic_prompt is None:
            return None
        return {
            "semantic_prompt": self._tensor(x.semantic_prompt),
            "coarse_prompt": self._tensor(x.coarse_prompt),
            "fine_prompt": self._tensor(x.fine_prompt),
        }

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(array)).to(self.device)

    def _seed(self) -> None:
        # The port samples from torch's global generator (CUDA's too, on a GPU).
        torch.manual_seed(int(self.generator.initial_seed()))

    @torch.no_grad()
    def semantic(self) -> np.ndarray:
        self._seed()
        text = self.inputs.text_ids[:256]
        ids = torch.zeros(1, 256, dtype=torch.long)
        mask = torch.zeros(1, 256, dtype=torch.long)
        ids[0, : len(text)] = torch.tensor(text, dtype=torch.long)
        mask[0, : len(text)] = 1
        out = self.ports["semantic"].generate(
            ids.to(self.device), semantic_generation_config=self.sem_cfg,
            history_prompt=self._history(), attention_mask=mask.to(self.device),
        )
        return out[0].cpu().numpy()

    @torch.no_grad()
    def coarse(self) -> np.ndarray:
        from ..stages.coarse import unflatten_coarse

        self._seed()
        out = self.ports["coarse"].generate(
            self._tensor(self.inputs.semantic)[None],
            semantic_generation_config=self.sem_cfg,
            coarse_generation_config=self.coarse_cfg,
            history_prompt=self._history(),
        )
        return unflatten_coarse(out[0].cpu().numpy())

    @torch.no_grad()
    def fine(self) -> np.ndarray:
        from ..stages.coarse import flatten_coarse

        self._seed()
        out = self.ports["fine"].generate(
            self._tensor(flatten_coarse(self.inputs.coarse))[None],
            semantic_generation_config=self.sem_cfg,
            coarse_generation_config=self.coarse_cfg,
            fine_generation_config=self.fine_cfg,
            history_prompt=self._history(),
            temperature=self.work.fine_temp,
        )
        return out[0].cpu().numpy()

    @torch.no_grad()
    def decode(self) -> np.ndarray:
        from types import SimpleNamespace

        from transformers import BarkModel

        fine = self._tensor(self.inputs.fine)[None]  # (B, 8, T), as BarkModel.generate has it
        audio = BarkModel.codec_decode(SimpleNamespace(codec_model=self.codec), fine)
        return audio[0].float().cpu().numpy()


RUNNERS = {"ours": OursRunner, "port": PortRunner}
