"""Bark's fixed numbers and the model dimensions of each checkpoint.

The constants are properties of the trained checkpoints (token ids, rates,
window sizes); changing any of them breaks compatibility with `suno/bark`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# --- rates -----------------------------------------------------------------
SAMPLE_RATE = 24_000  # Hz, EnCodec 24 kHz output
SEMANTIC_RATE_HZ = 49.9  # semantic tokens per second of audio
COARSE_RATE_HZ = 75  # EnCodec frames per second
CONTEXT_WINDOW = 1024  # block_size of every Bark GPT

# --- vocabularies and special ids --------------------------------------------
SEMANTIC_VOCAB_SIZE = 10_000
CODEBOOK_SIZE = 1024
N_COARSE_CODEBOOKS = 2
N_FINE_CODEBOOKS = 8

TEXT_ENCODING_OFFSET = 10_048  # WordPiece id + offset = text-model input id
SEMANTIC_PAD_TOKEN = 10_000  # pads semantic history; also the EOS logit
TEXT_PAD_TOKEN = 129_595
SEMANTIC_INFER_TOKEN = 129_599
COARSE_SEMANTIC_PAD_TOKEN = 12_048
COARSE_INFER_TOKEN = 12_050

# --- stage geometry ------------------------------------------------------------
MAX_TEXT_TOKENS = 256  # text context of the semantic model
SEMANTIC_HISTORY_LEN = 256  # semantic history slots of the semantic model
MAX_SEMANTIC_STEPS = 768  # original cap on semantic steps (~15 s)
SEMANTIC_TO_COARSE_RATIO = COARSE_RATE_HZ / SEMANTIC_RATE_HZ * N_COARSE_CODEBOOKS  # ≈ 3.006
MAX_COARSE_HISTORY = 630  # coarse tokens of history per window
COARSE_WINDOW_STEPS = 60  # coarse tokens sampled per sliding window
COARSE_SEMANTIC_WINDOW = 256  # semantic tokens re-read per coarse window
FINE_WINDOW = 1024  # frames per fine window
FINE_STEP = 512  # frames a fine window advances
FINE_MAX_HISTORY = 512  # frames of fine history
FINE_PAD_CODE = CODEBOOK_SIZE  # 1024: "not yet predicted" code in the fine model

# --- batches ---------------------------------------------------------------------
MAX_BATCH = 16  # rows one batch holds (a GPU step always runs this many slots)

# --- checkpoint files (hub repo `suno/bark`) ---------------------------------
DEFAULT_REPO = "suno/bark"
CODEC_REPO = "facebook/encodec_24khz"
CHECKPOINT_FILES = {
    "small": {"semantic": "text.pt", "coarse": "coarse.pt", "fine": "fine.pt"},
    "large": {"semantic": "text_2.pt", "coarse": "coarse_2.pt", "fine": "fine_2.pt"},
}
VOCAB_FILE = "vocab.txt"
CODEC_DIR = "encodec"  # local-folder layout: DIR/encodec/{config.json,model.safetensors}
PRESET_DIR = "speaker_embeddings"


@dataclass(frozen=True)
class GPTConfig:
    """Hyper-parameters of one Bark GPT, as stored in a checkpoint's `model_args`.

    The fine model adds `n_codes_total`/`n_codes_given`; for causal models they
    are unused.
    """

    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = CONTEXT_WINDOW
    bias: bool = False
    dropout: float = 0.0
    input_vocab_size: int = 10_048
    output_vocab_size: int = 10_048
    n_codes_total: int = N_FINE_CODEBOOKS
    n_codes_given: int = 1

    @classmethod
    def from_model_args(cls, args: dict) -> GPTConfig:
        """Build from a checkpoint's `model_args`, accepting the old single `vocab_size`."""
        args = dict(args)
        if "vocab_size" in args:
            vocab = int(args.pop("vocab_size"))
            args.setdefault("input_vocab_size", vocab)
            args.setdefault("output_vocab_size", vocab)
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in args.items() if k in known}
        return cls(**kwargs)

    def to_model_args(self, *, fine: bool = False) -> dict:
        """The `model_args` dict the original checkpoints carry."""
        out = {
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_embd": self.n_embd,
            "block_size": self.block_size,
            "bias": self.bias,
            "dropout": self.dropout,
            "input_vocab_size": self.input_vocab_size,
            "output_vocab_size": self.output_vocab_size,
        }
        if fine:
            out["n_codes_total"] = self.n_codes_total
            out["n_codes_given"] = self.n_codes_given
        return out


# Vocab sizes of the three real models (identical for small and large).
SEMANTIC_VOCABS = {"input_vocab_size": 129_600, "output_vocab_size": 10_048}
COARSE_VOCABS = {"input_vocab_size": 12_096, "output_vocab_size": 12_096}
FINE_VOCABS = {"input_vocab_size": 1_056, "output_vocab_size": 1_056}

# Transformer dims per `--dims` name: (n_layer, n_head, n_embd).
DIMS = {
    "tiny": (2, 2, 32),
    "small": (12, 12, 768),
    "large": (24, 16, 1024),
}


def stage_configs(dims: str) -> dict[str, GPTConfig]:
    """The three GPT configs for a named size, with the real vocabularies."""
    n_layer, n_head, n_embd = DIMS[dims]
    base = {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd}
    return {
        "semantic": GPTConfig(**base, **SEMANTIC_VOCABS),
        "coarse": GPTConfig(**base, **COARSE_VOCABS),
        "fine": GPTConfig(**base, **FINE_VOCABS),
    }
