"""The user's settings: a typed dataclass, stored as JSON, forgiving on load.

A settings file is edited by hand, copied between machines and written by
older or newer versions of the app. So loading never fails: a missing file
gives the defaults, a field with a wrong type or an impossible value falls
back to its default with a warning the app can show, and unknown keys are
ignored (a newer version's keys survive a round trip only in that version).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from bark_engine.config import MAX_BATCH
from bark_engine.files import atomic_write
from bark_engine.options import (
    DEFAULT_FINE_TEMP,
    DEFAULT_MIN_EOS_P,
    DEFAULT_TEXT_TEMP,
    DEFAULT_WAVEFORM_TEMP,
    PRECISIONS,
    EngineConfig,
    GenerationOptions,
)

SIZES = ("small", "large")
# "auto": float32 on the CPU, bfloat16 (or float16) on a GPU; on the CPU a half
# precision halves the matrix weights only (bark_engine.model.precision)
DTYPES = PRECISIONS
SEED_MODES = ("random", "fixed")
CONTINUITY_MODES = ("fixed", "chain")
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed accepts any 64-bit value


# The voice of the studio and of `say`/`render` until the user picks another: one source
# for both (Settings changes the studio's, `--voice` a command's; `--voice none` lets Bark
# pick a speaker, which changes with the seed).
DEFAULT_VOICE = "v2/en_speaker_6"


@dataclass
class Settings:
    """Everything the settings screen edits. Defaults match the original Bark."""

    models: str | None = None  # model folder or hub repo id; None = "suno/bark"
    size: str = "small"  # "small" | "large"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    dtype: str = "auto"  # precision: one of DTYPES
    text_temp: float = DEFAULT_TEXT_TEMP  # semantic stage; 0 = greedy
    waveform_temp: float = DEFAULT_WAVEFORM_TEMP  # coarse stage; 0 = greedy
    fine_temp: float = DEFAULT_FINE_TEMP  # fine stage; 0 = argmax
    min_eos_p: float = DEFAULT_MIN_EOS_P  # end the semantic stage once EOS is this likely
    top_k: int | None = None
    top_p: float | None = None
    seed_mode: str = "random"  # "random": a new seed per take; "fixed": always fixed_seed
    fixed_seed: int = 0
    output_dir: str | None = None  # None = locations.default_output_dir()
    theme: str = "textual-dark"
    default_voice: str = DEFAULT_VOICE
    speakers: dict[str, str] = field(default_factory=dict)  # dialogue: speaker name -> voice
    long_form: bool = False  # long-script profile: LONG_FORM_TEXT_TEMP, LONG_FORM_MIN_EOS_P
    continuity: str = "fixed"  # long scripts: "fixed" preset per segment, or "chain" takes
    reset_every: int = 0  # chain mode: back to the preset every N segments; 0 = never
    play_while_generating: bool = True  # long scripts: play segment 1 while the rest is made
    batch: int = 0  # long scripts: segments made at once; 0 = the engine's default for the device
    server: str | None = None  # a `bark-tui serve` URL to use instead of the local engine
    server_key_file: str | None = None  # that server's key, in a file only the user can read
    ray: str | None = None  # long scripts on Ray: "local", "auto" or ray://HOST:PORT; None = here
    read_numbers: bool = True  # "15%" is given to Bark as "fifteen percent" (bark_tui.text)
    lexicon_file: str | None = None  # a TOML of how to say names and jargon
    # The Save dialog's last choice: file type (an extension), mastering, trimming.
    save_format: str = "wav"
    save_master: str = "none"
    save_trim: bool = False


# --- type checks -------------------------------------------------------------


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str(v: object) -> bool:
    return isinstance(v, str)


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or check(v)


def _is_speakers(v: object) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, str) for k, x in v.items()
    )


# What a JSON value must look like to be taken as the field's value.
_TYPE_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "models": (_optional(_is_str), "a string or null"),
    "size": (_is_str, "a string"),
    "device": (_is_str, "a string"),
    "dtype": (_is_str, "a string"),
    "text_temp": (_is_number, "a number"),
    "waveform_temp": (_is_number, "a number"),
    "fine_temp": (_is_number, "a number"),
    "min_eos_p": (_is_number, "a number"),
    "top_k": (_optional(_is_int), "an integer or null"),
    "top_p": (_optional(_is_number), "a number or null"),
    "seed_mode": (_is_str, "a string"),
    "fixed_seed": (_is_int, "an integer"),
    "output_dir": (_optional(_is_str), "a string or null"),
    "theme": (_is_str, "a string"),
    "default_voice": (_is_str, "a string"),
    "speakers": (_is_speakers, "an object of speaker name to voice"),
    "long_form": (lambda v: isinstance(v, bool), "true or false"),
    "continuity": (_is_str, "a string"),
    "reset_every": (_is_int, "an integer"),
    "play_while_generating": (lambda v: isinstance(v, bool), "true or false"),
    "batch": (_is_int, "an integer"),
    "server": (_optional(_is_str), "a URL or null"),
    "server_key_file": (_optional(_is_str), "a path or null"),
    "ray": (_optional(_is_str), "local, auto, ray://HOST:PORT or null"),
    "read_numbers": (lambda v: isinstance(v, bool), "true or false"),
    "lexicon_file": (_optional(_is_str), "a path or null"),
    "save_format": (_is_str, "a string"),
    "save_master": (_is_str, "a string"),
    "save_trim": (lambda v: isinstance(v, bool), "true or false"),
}


# --- value checks --------------------------------------------------------------


def _field_problems(s: Settings) -> dict[str, str]:
    """Field name -> why its value is not usable. Assumes the types are right."""
    problems: dict[str, str] = {}
    if s.size not in SIZES:
        problems["size"] = f"size must be one of {', '.join(SIZES)} (got {s.size!r})"
    if not s.device.strip():
        problems["device"] = "device must not be empty (use 'auto')"
    if s.dtype not in DTYPES:
        problems["dtype"] = f"dtype must be one of {', '.join(DTYPES)} (got {s.dtype!r})"
    for name in ("text_temp", "waveform_temp", "fine_temp"):
        value = getattr(s, name)
        if not (value >= 0 and math.isfinite(value)):  # NaN fails both
            problems[name] = f"{name} must be a finite number, 0 or more (got {value})"
    if not 0 <= s.min_eos_p <= 1:
        problems["min_eos_p"] = f"min_eos_p must be between 0 and 1 (got {s.min_eos_p})"
    if s.top_k is not None and s.top_k < 1:
        problems["top_k"] = f"top_k must be 1 or more, or empty (got {s.top_k})"
    if s.top_p is not None and not 0 < s.top_p <= 1:
        problems["top_p"] = f"top_p must be in (0, 1], or empty (got {s.top_p})"
    if s.seed_mode not in SEED_MODES:
        problems["seed_mode"] = (
            f"seed_mode must be one of {', '.join(SEED_MODES)} (got {s.seed_mode!r})"
        )
    if not 0 <= s.fixed_seed <= MAX_SEED:
        problems["fixed_seed"] = f"fixed_seed must be between 0 and {MAX_SEED} (got {s.fixed_seed})"
    if not s.theme.strip():
        problems["theme"] = "theme must not be empty"
    if not s.default_voice.strip():
        problems["default_voice"] = "default_voice must not be empty"
    if s.continuity not in CONTINUITY_MODES:
        problems["continuity"] = (
            f"continuity must be one of {', '.join(CONTINUITY_MODES)} (got {s.continuity!r})"
        )
    if not 0 <= s.reset_every <= 10_000:
        problems["reset_every"] = f"reset_every must be 0 (never) or more (got {s.reset_every})"
    if not 0 <= s.batch <= MAX_BATCH:
        problems["batch"] = f"batch must be 0 (auto) to {MAX_BATCH} (got {s.batch})"
    if s.server:
        from ..remote.http import RemoteError, check_url

        try:
            check_url(s.server)
        except RemoteError as exc:
            problems["server"] = str(exc)
    if s.ray:
        from bark_engine.errors import BadInputError

        from ..cluster.connect import check_address

        try:
            check_address(s.ray)
        except BadInputError as exc:
            problems["ray"] = str(exc).replace("--ray wants", "Ray cluster wants")
        else:
            if s.server:
                problems["ray"] = ("a Ray cluster and an engine server cannot both make the "
                                   "segments: clear one of them")
    from ..finish.formats import EXTENSIONS
    from ..finish.loudness import MASTER_CHOICES

    if f".{s.save_format}" not in EXTENSIONS:
        problems["save_format"] = (f"save_format must be one of "
                                   f"{', '.join(e[1:] for e in EXTENSIONS)} (got {s.save_format!r})")
    if s.save_master not in MASTER_CHOICES:
        problems["save_master"] = (f"save_master must be one of {', '.join(MASTER_CHOICES)} "
                                   f"(got {s.save_master!r})")
    bad = [name for name, voice in s.speakers.items() if not name.strip() or not voice.strip()]
    if bad:
        problems["speakers"] = "every speaker needs a name and a voice"
    return problems


def validate_settings(settings: Settings) -> list[str]:
    """Human-readable problems, one per bad field; empty when the settings are usable.

    The settings screen calls this before saving; the same rules decide which
    fields :func:`load_settings` resets.
    """
    type_errors = [
        f"{name} must be {expected}"
        for name, (check, expected) in _TYPE_CHECKS.items()
        if not check(getattr(settings, name))
    ]
    if type_errors:
        return type_errors
    return list(_field_problems(settings).values())


# --- load / save -----------------------------------------------------------------


def load_settings(path: Path) -> tuple[Settings, list[str]]:
    """Read settings from ``path``; never raises for a bad file.

    Returns the settings and warnings about what was ignored. A missing file is
    not a problem (first run): defaults, no warnings.
    """
    path = Path(path)
    try:
        raw_text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings(), []
    except (OSError, UnicodeDecodeError) as exc:
        return Settings(), [f"Could not read {path}: {exc}; using default settings."]
    try:
        raw = json.loads(raw_text)
    except json.JSONDecodeError as exc:
        return Settings(), [f"{path} is not valid JSON ({exc}); using default settings."]
    if not isinstance(raw, dict):
        return Settings(), [f"{path} does not hold a JSON object; using default settings."]

    warnings: list[str] = []
    values: dict[str, object] = {}
    for f in fields(Settings):
        if f.name not in raw:
            continue
        check, expected = _TYPE_CHECKS[f.name]
        value = raw[f.name]
        if check(value):
            values[f.name] = dict(value) if isinstance(value, dict) else value
        else:
            warnings.append(f"Setting {f.name} must be {expected}; using the default.")
    settings = Settings(**values)  # type: ignore[arg-type]

    defaults = Settings()
    for name, problem in _field_problems(settings).items():
        setattr(settings, name, getattr(defaults, name))
        warnings.append(f"{problem}; using the default.")
    return settings, warnings


def save_settings(settings: Settings, path: Path) -> None:
    """Write ``settings`` as JSON, atomically: a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n"
    with atomic_write(path, "w") as fh:
        fh.write(data)


def generation_options(settings: Settings, seed: int | None = None) -> GenerationOptions:
    """The engine's options for one take.

    ``seed`` wins when given (e.g. "regenerate with the same seed"); otherwise a
    fixed seed mode uses ``fixed_seed`` and random mode leaves it to the engine,
    which reports the seed it drew.
    """
    if seed is None and settings.seed_mode == "fixed":
        seed = settings.fixed_seed
    return GenerationOptions(
        text_temp=float(settings.text_temp),
        waveform_temp=float(settings.waveform_temp),
        fine_temp=float(settings.fine_temp),
        top_k=settings.top_k,
        top_p=None if settings.top_p is None else float(settings.top_p),
        min_eos_p=float(settings.min_eos_p),
        seed=seed,
    )


def engine_dtype(s: Settings) -> str | None:
    """The `EngineConfig.dtype` the settings ask for (None: the engine's own default)."""
    return None if s.dtype == "auto" else s.dtype


def merge_engine_config(cli: EngineConfig, settings: Settings) -> EngineConfig:
    """Command-line choices win; what the command line left at its default comes from settings."""
    default = EngineConfig()
    return dataclasses.replace(
        cli,
        models=cli.models if cli.models is not None else settings.models,
        size=cli.size if cli.size != default.size else settings.size,  # type: ignore[arg-type]
        device=cli.device if cli.device != default.device else settings.device,
        dtype=cli.dtype if cli.dtype not in (None, default.dtype) else engine_dtype(settings),
    )
