"""Voice prompts: the three token arrays that make Bark speak in a given voice.

A prompt is what the original Bark stores in a `.npz` file (`semantic_prompt`
(T,), `coarse_prompt` (2, T'), `fine_prompt` (8, T')). Files come from the
hub, from users and from community sites, so every loader validates strictly
and explains in one line what is wrong: a user can fix a file only if they
know which array, which shape and which values are off.

Float arrays: community tools often save the codes as float64. We accept a
float array only when every value is finite and integral (then it is the
same data in another dtype, as the original Bark's `astype(int64)` would
see it); a float array with fractional values is refused and the message
says so. Object (pickled) arrays are always refused: unpickling can run code.

numpy + stdlib only: the app imports this at start-up without torch.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import (
    COARSE_RATE_HZ,
    CODEBOOK_SIZE,
    N_COARSE_CODEBOOKS,
    N_FINE_CODEBOOKS,
    SEMANTIC_RATE_HZ,
    SEMANTIC_VOCAB_SIZE,
)
from ..errors import BadInputError, VoiceError
from ..files import atomic_write

PROMPT_KEYS = ("semantic_prompt", "coarse_prompt", "fine_prompt")
COARSE_PER_SEMANTIC = COARSE_RATE_HZ / SEMANTIC_RATE_HZ  # ≈ 1.503 frames per semantic token
RATIO_ABS_TOLERANCE = 3  # frames; the original rounds coarse length down to whole frames
RATIO_REL_TOLERANCE = 0.02  # 2 % of the expected coarse length

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True, eq=False)
class VoicePrompt:
    """A validated voice prompt; arrays are int64 and read-only.

    Build one with `from_npz`, `from_arrays` or `voices.load_preset`, which
    validate; direct construction does not (call `validate()` yourself).
    """

    semantic: np.ndarray  # (T,) semantic tokens in [0, 10000), 49.9 per second
    coarse: np.ndarray  # (2, T') EnCodec codes in [0, 1024), 75 frames per second
    fine: np.ndarray  # (8, T') EnCodec codes in [0, 1024); rows 0-1 normally equal coarse
    name: str = ""  # preset name, user voice name or file stem; "" when unnamed

    @classmethod
    def from_arrays(
        cls,
        semantic: np.ndarray,
        coarse: np.ndarray,
        fine: np.ndarray,
        name: str = "",
        *,
        source: str = "",
    ) -> VoicePrompt:
        """Validate and normalise raw arrays; `source` prefixes error messages."""
        label = source or name or "voice prompt"
        arrays = [
            _as_codes(label, key, arr)
            for key, arr in zip(PROMPT_KEYS, (semantic, coarse, fine), strict=True)
        ]
        prompt = cls(*arrays, name=name)
        prompt.validate(source=label)
        return prompt

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str], name: str | None = None) -> VoicePrompt:
        """Load an original-format `.npz` (never unpickling) and validate it."""
        path = Path(path)
        label = path.name
        if not path.is_file():
            raise VoiceError(f"voice file not found: {path}")
        try:
            with path.open("rb") as f:
                head = f.read(8)
        except OSError as exc:
            raise VoiceError(f"{label}: cannot read: {exc.strerror or exc}") from exc
        _check_zip_head(head, label)
        return cls._from_zip(path, label, path.stem if name is None else name)

    @classmethod
    def from_npz_bytes(cls, data: bytes, name: str = "", label: str = "voice upload",
                       max_bytes: int | None = None) -> VoicePrompt:
        """The same strict loader for an `.npz` held in memory (a voice sent to the
        service): nothing is written and nothing is unpickled."""
        if not isinstance(data, bytes | bytearray):
            raise VoiceError(f"{label}: expected the bytes of an .npz file")
        if max_bytes is not None and len(data) > max_bytes:
            raise VoiceError(f"{label}: {len(data)} bytes; at most {max_bytes} are accepted")
        _check_zip_head(bytes(data[:8]), label)
        return cls._from_zip(io.BytesIO(data), label, name)

    @classmethod
    def _from_zip(cls, source, label: str, name: str) -> VoicePrompt:
        try:
            _check_members(source, label)
            if hasattr(source, "seek"):
                source.seek(0)
            with np.load(source, allow_pickle=False) as npz:
                found = list(npz.files)
                missing = [k for k in PROMPT_KEYS if k not in found]
                if missing:
                    keys = ", ".join(found) if found else "none"
                    raise VoiceError(f"{label}: missing {', '.join(missing)}; keys found: {keys}")
                raw = [_read_member(npz, label, key) for key in PROMPT_KEYS]
        except VoiceError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error, ValueError) as exc:
            raise VoiceError(f"{label}: not a readable .npz file (truncated?): {exc}") from exc
        return cls.from_arrays(*raw, name=name, source=label)

    def validate(self, source: str = "") -> None:
        """Raise `VoiceError` with one line naming the first problem found."""
        label = source or self.name or "voice prompt"
        sem, coarse, fine = self.semantic, self.coarse, self.fine
        for key, arr in zip(PROMPT_KEYS, (sem, coarse, fine), strict=True):
            if not isinstance(arr, np.ndarray):
                raise VoiceError(f"{label}: {key} is a {type(arr).__name__}, not a numpy array")
            if not np.issubdtype(arr.dtype, np.integer):
                raise VoiceError(f"{label}: {key} has dtype {arr.dtype}; expected integers")
        _check_shape(label, "semantic_prompt", sem, None)
        _check_shape(label, "coarse_prompt", coarse, N_COARSE_CODEBOOKS)
        _check_shape(label, "fine_prompt", fine, N_FINE_CODEBOOKS)
        _check_range(label, "semantic_prompt", sem, SEMANTIC_VOCAB_SIZE)
        _check_range(label, "coarse_prompt", coarse, CODEBOOK_SIZE)
        _check_range(label, "fine_prompt", fine, CODEBOOK_SIZE)
        if coarse.shape[1] != fine.shape[1]:
            raise VoiceError(
                f"{label}: coarse_prompt has {coarse.shape[1]} frames but fine_prompt has "
                f"{fine.shape[1]}; they must match"
            )
        expected = sem.shape[0] * COARSE_PER_SEMANTIC
        tolerance = max(RATIO_ABS_TOLERANCE, RATIO_REL_TOLERANCE * expected)
        if abs(coarse.shape[1] - expected) > tolerance:
            ratio = coarse.shape[1] / sem.shape[0]
            raise VoiceError(
                f"{label}: coarse/semantic length ratio is {ratio:.3f} "
                f"({coarse.shape[1]} frames for {sem.shape[0]} semantic tokens); "
                f"expected about {COARSE_PER_SEMANTIC:.3f}"
            )

    @property
    def duration_s(self) -> float:
        """Seconds of audio the prompt holds (fine frames at 75 Hz)."""
        return self.fine.shape[1] / COARSE_RATE_HZ

    def as_dict(self) -> dict[str, np.ndarray]:
        """The arrays under their original `.npz` keys."""
        return dict(zip(PROMPT_KEYS, (self.semantic, self.coarse, self.fine), strict=True))

    def with_name(self, name: str) -> VoicePrompt:
        """The same prompt under another name (arrays are shared: they are read-only)."""
        return VoicePrompt(self.semantic, self.coarse, self.fine, name=name)

    def save_npz(self, path: str | os.PathLike[str]) -> Path:
        """Write the original `.npz` format atomically, so a crash never leaves half a file.

        The original Bark loads the result unchanged (`np.load(...)[key]`).
        """
        self.validate()
        path = Path(path)
        folder = path.parent
        if not folder.is_dir():
            raise BadInputError(f"cannot save voice: folder does not exist: {folder}")
        if not os.access(folder, os.W_OK):
            raise BadInputError(f"cannot save voice: folder is not writable: {folder}")
        with atomic_write(path) as f:
            np.savez(f, **self.as_dict())
        return path


def load_npy(path: str | os.PathLike[str], label: str) -> np.ndarray:
    """Load one `.npy` array without unpickling; `label` names it in errors."""
    path = Path(path)
    if not path.is_file():
        raise VoiceError(f"{label}: file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise VoiceError(
                f"{label}: holds pickled Python objects; refused (loading them can run code)"
            ) from exc
        raise VoiceError(f"{label}: not a readable .npy array: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise VoiceError(f"{label}: not a readable .npy array: {exc}") from exc


MAX_MEMBERS = 16  # a prompt holds three arrays
MAX_MEMBER_BYTES = 4 * 1024 * 1024  # one array unpacked (a preset's largest is ~40 KB)


def _check_members(source, label: str) -> None:
    """Refuse, before numpy allocates anything, an archive that unpacks to more than
    a prompt can need: too many members, a member over `MAX_MEMBER_BYTES`, or an
    array header that declares more data than its member holds (a zip bomb, or a
    shape that would allocate gigabytes)."""
    with zipfile.ZipFile(source) as z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            raise VoiceError(f"{label}: {len(infos)} arrays; a voice prompt has three")
        for info in infos:
            if info.file_size > MAX_MEMBER_BYTES:
                raise VoiceError(f"{label}: {info.filename} unpacks to {info.file_size} bytes; "
                                 f"at most {MAX_MEMBER_BYTES} are accepted")
            if not info.filename.endswith(".npy"):
                continue  # never read as an array (the keys are named below)
            with z.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _fortran, dtype = read(f)
                except ValueError as exc:
                    raise VoiceError(f"{label}: {info.filename} is not a numpy array: "
                                     f"{exc}") from None
            if dtype.hasobject:
                key = info.filename.removesuffix(".npy")
                raise VoiceError(f"{label}: {key} is a pickled object array; refused "
                                 "(loading it can run code)")
            if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > info.file_size:
                raise VoiceError(f"{label}: {info.filename} declares shape {shape}, more data "
                                 "than it holds")


def _check_zip_head(head: bytes, label: str) -> None:
    """Tell a plain .npy, an empty file or some other file apart from an .npz
    by its first bytes."""
    if not head:
        raise VoiceError(f"{label}: file is empty")
    if head.startswith(_NPY_MAGIC):
        raise VoiceError(f"{label}: is a single .npy array, not an .npz voice prompt")
    if head.startswith(_EMPTY_ZIP_MAGIC):
        raise VoiceError(f"{label}: is an empty zip; keys found: none")
    if not head.startswith(_ZIP_MAGIC):
        raise VoiceError(f"{label}: not an .npz file (no zip header)")


def _read_member(npz: np.lib.npyio.NpzFile, label: str, key: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise VoiceError(
                f"{label}: {key} is a pickled object array; refused (loading it can run code)"
            ) from exc
        raise


def _as_codes(label: str, key: str, arr: object) -> np.ndarray:
    """Convert one raw array to read-only int64, or say why it is not token codes."""
    if not isinstance(arr, np.ndarray):
        try:
            arr = np.asarray(arr)
        except (TypeError, ValueError) as exc:
            raise VoiceError(f"{label}: {key} is not an array: {exc}") from exc
    if arr.dtype == object:
        raise VoiceError(f"{label}: {key} is an object array; expected integers")
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise VoiceError(f"{label}: {key} has dtype {arr.dtype}; expected integers")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise VoiceError(f"{label}: {key} is a float array with NaN or infinite values")
        fractional = arr != np.round(arr)
        if np.any(fractional):
            bad = float(arr[fractional].flat[0])
            raise VoiceError(
                f"{label}: {key} is a float array with non-integer values (e.g. {bad!r}); "
                "expected integer token codes"
            )
    out = np.array(arr, dtype=np.int64, copy=True)
    out.setflags(write=False)
    return out


def _check_shape(label: str, key: str, arr: np.ndarray, rows: int | None) -> None:
    """`rows` None: a 1-D (T,) array; else a (rows, T) array. T must be positive."""
    shape = tuple(arr.shape)
    if rows is None:
        if arr.ndim == 2 and 1 in shape:
            raise VoiceError(
                f"{label}: {key} has shape {shape}; expected a 1-D array (T,), "
                "not a 2-D column or row"
            )
        if arr.ndim != 1:
            raise VoiceError(f"{label}: {key} has shape {shape}; expected (T,)")
        if shape[0] == 0:
            raise VoiceError(f"{label}: {key} is empty")
        return
    if arr.ndim != 2 or shape[0] != rows:
        hint = ""
        if arr.ndim == 2 and shape[1] == rows:
            hint = f" (transposed? it looks like (T, {rows}))"
        raise VoiceError(f"{label}: {key} has shape {shape}; expected ({rows}, T){hint}")
    if shape[1] == 0:
        raise VoiceError(f"{label}: {key} is empty (shape {shape})")


def _check_range(label: str, key: str, arr: np.ndarray, size: int) -> None:
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= size:
        raise VoiceError(
            f"{label}: {key} values out of range: min {lo}, max {hi}; expected 0..{size - 1}"
        )
