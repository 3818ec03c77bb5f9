"""The voice library: Bark's preset catalog, the user's own voices, and name resolution.

The catalog is the allow-list of preset names. A name from a script, a CLI
flag or a settings file is checked for path tricks before anything touches
the disk, and a preset is only ever fetched by the hub paths derived from
its catalog entry. User voices live as original-format `.npz` files in one
folder, under names that cannot leave it.

numpy + stdlib only: the app imports this at start-up without torch.
"""

from __future__ import annotations

import builtins
import csv
import difflib
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..config import PRESET_DIR
from ..errors import VoiceError
from .prompts import PROMPT_KEYS, VoicePrompt, load_npy

__all__ = [
    "PRESETS",
    "PresetInfo",
    "UserVoiceInfo",
    "UserVoiceScan",
    "UserVoices",
    "VoicePrompt",
    "check_name_safe",
    "find_presets",
    "get_preset",
    "is_preset_name",
    "load_preset",
    "preset_files",
    "preset_relpaths",
    "resolve_voice_arg",
    "safe_voice_name",
    "valid_user_voice_name",
]

FetchFn = Callable[[str], Path]  # repo-relative hub path -> local file


@dataclass(frozen=True)
class PresetInfo:
    """One entry of Bark's preset catalog."""

    name: str  # "v2/en_speaker_6", "en_speaker_6" (v1) or "announcer"
    lang_code: str  # "en"
    language: str  # "English"
    gender: str  # "male", "female", or "" when unknown (v1 presets, announcer)
    prompt_seconds: float | None  # length of the preset's own audio; None when unknown
    semantic_tokens: int | None  # semantic tokens in the prompt; None when unknown
    version: str  # "v2", "v1", or "" (announcer)


def _load_catalog() -> tuple[PresetInfo, ...]:
    """v2 presets from the packaged tsv, then the v1 names of the same speakers, then announcer."""
    text = resources.files("bark_engine").joinpath("data/voices.tsv").read_text("utf-8")
    v2: list[PresetInfo] = []
    for row in csv.DictReader(io.StringIO(text), delimiter="\t"):
        name = row["preset"].strip()
        code = name.removeprefix("v2/").split("_", 1)[0]
        v2.append(
            PresetInfo(
                name=name,
                lang_code=code,
                language=row["language"].strip(),
                gender=row["gender"].strip().lower(),
                prompt_seconds=float(row["prompt_seconds"]),
                semantic_tokens=int(row["semantic_tokens"]),
                version="v2",
            )
        )
    # The original also ships every v2 speaker under its older v1 name; their
    # genders and lengths are not recorded, so they stay unknown.
    v1 = [
        PresetInfo(p.name.removeprefix("v2/"), p.lang_code, p.language, "", None, None, "v1")
        for p in v2
    ]
    announcer = PresetInfo("announcer", "en", "English", "", None, None, "")
    return (*v2, *v1, announcer)


PRESETS: tuple[PresetInfo, ...] = _load_catalog()
_BY_NAME: dict[str, PresetInfo] = {p.name: p for p in PRESETS}
LANGUAGES: dict[str, str] = {p.lang_code: p.language for p in PRESETS}  # "en" -> "English"
_VERSION_RANK = {"v2": 0, "v1": 1, "": 2}


# --- name safety -----------------------------------------------------------------

_USER_NAME_RE = re.compile(r"[\w][\w .\-]{0,63}")
_WINDOWS_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def check_name_safe(name: str) -> str:
    """Return the stripped name, or raise `VoiceError` if it could address a file elsewhere.

    Allowed: no path separators except the single `v2/` prefix of catalog
    names, no `..`, not absolute, no control characters.
    """
    if not isinstance(name, str) or not name.strip():
        raise VoiceError("empty voice name")
    name = name.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise VoiceError(f"unsafe voice name {name!r}: contains a control character")
    if name.startswith(("/", "\\", "~")) or _WINDOWS_DRIVE_RE.match(name):
        raise VoiceError(f"unsafe voice name {name!r}: looks like an absolute path")
    if ".." in name:
        raise VoiceError(f"unsafe voice name {name!r}: contains '..'")
    rest = name[3:] if name.lower().startswith("v2/") else name
    if "/" in rest or "\\" in rest:
        raise VoiceError(f"unsafe voice name {name!r}: contains a path separator")
    return name


def valid_user_voice_name(name: str) -> bool:
    """True for names a user voice file may carry (letters, digits, space, `_ . -`)."""
    return isinstance(name, str) and _USER_NAME_RE.fullmatch(name) is not None


def safe_voice_name(text: str, fallback: str = "voice") -> str:
    """Derive a valid user voice name from any text (e.g. the first words of a take)."""
    cleaned = re.sub(r"[^\w .\-]+", " ", text)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .-")[:64].strip(" .-")
    if not cleaned or not valid_user_voice_name(cleaned):
        return fallback
    return f"{cleaned} voice" if is_preset_name(cleaned) else cleaned


# --- catalog queries ---------------------------------------------------------------


def is_preset_name(name: str) -> bool:
    """True when `name` is a catalog preset (case and surrounding spaces ignored)."""
    return isinstance(name, str) and name.strip().lower() in _BY_NAME


def get_preset(name: str) -> PresetInfo:
    """The catalog entry for `name`, or `VoiceError` with close-name suggestions."""
    name = check_name_safe(name)
    info = _BY_NAME.get(name.lower())
    if info is None:
        raise VoiceError(f"unknown preset {name!r}{_suggest(name, _BY_NAME)}")
    return info


def find_presets(
    lang: str | None = None, gender: str | None = None, query: str | None = None
) -> list[PresetInfo]:
    """Presets matching all given filters, v2 first; case-insensitive.

    `lang` is a code ("de") or a language name ("German"); `gender` is
    "male"/"female" ("any" or "" = no filter); `query` matches when it is a
    substring of the name or when each of its words starts a word of the
    name, language or gender ("german fem", "speaker_3").
    """
    lang_key = (lang or "").strip().casefold()
    gender_key = (gender or "").strip().casefold()
    query_key = (query or "").strip().casefold()
    words = query_key.split()
    out = []
    for info in PRESETS:
        if lang_key and lang_key not in (info.lang_code.casefold(), info.language.casefold()):
            continue
        if gender_key not in ("", "any") and info.gender != gender_key:
            continue
        if query_key and query_key not in info.name:
            hay = re.split(r"[/_\s]+", f"{info.name} {info.language} {info.gender}".casefold())
            if not all(any(h.startswith(w) for h in hay) for w in words):
                continue
        out.append(info)
    out.sort(key=lambda p: _VERSION_RANK[p.version])
    return out


def preset_relpaths(name: str) -> tuple[str, str, str]:
    """Hub paths of a preset's semantic, coarse and fine `.npy` files (in that order)."""
    info = get_preset(name)
    stem = f"{PRESET_DIR}/{info.name}"
    semantic, coarse, fine = (f"{stem}_{key}.npy" for key in PROMPT_KEYS)
    return semantic, coarse, fine


preset_files = preset_relpaths  # the name docs/CONTRACTS.md uses


def load_preset(name: str, fetch: FetchFn) -> VoicePrompt:
    """Fetch a preset's three `.npy` files by catalog path and validate them.

    `fetch` maps a hub path to a local file (e.g. `ModelSource.fetch`); its
    own errors (offline, missing) pass through unchanged.
    """
    info = get_preset(name)
    arrays: list[np.ndarray] = []
    for relpath in preset_relpaths(info.name):
        local = fetch(relpath)
        arrays.append(load_npy(local, f"{info.name}: {relpath.rsplit('/', 1)[-1]}"))
    return VoicePrompt.from_arrays(*arrays, name=info.name, source=f"preset {info.name}")


# --- resolving a --voice argument -----------------------------------------------------


def resolve_voice_arg(arg: str, fetch: FetchFn, user_voices_dir: Path | None = None) -> VoicePrompt:
    """Turn what a user typed (a `.npz` path, a preset, a "My voices" name) into a prompt."""
    if not isinstance(arg, str) or not arg.strip():
        raise VoiceError("empty voice name")
    text = arg.strip()
    if text.lower().endswith(".npz"):
        path = Path(text).expanduser()
        if path.is_file():
            return VoicePrompt.from_npz(path)
        raise VoiceError(f"voice file not found: {text}")
    text = check_name_safe(text)
    if is_preset_name(text):
        return load_preset(text, fetch)
    users = UserVoices(user_voices_dir) if user_voices_dir is not None else None
    if users is not None and valid_user_voice_name(text) and users.exists(text):
        return users.load(text)
    known = {p.name: None for p in PRESETS}
    if users is not None:
        known.update({v.name: None for v in users.list()})
    raise VoiceError(
        f"unknown voice {text!r} (not a preset, a My voices name or an .npz file)"
        f"{_suggest(text, known)}; `bark-tui voices` lists them"
    )


def _suggest(name: str, names: dict[str, object]) -> str:
    close = difflib.get_close_matches(name.lower(), list(names), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


# --- the user's own voices ------------------------------------------------------------


@dataclass(frozen=True)
class UserVoiceInfo:
    """One readable voice in the user's folder."""

    name: str
    path: Path
    duration_s: float


@dataclass(frozen=True)
class UserVoiceScan:
    """What a folder scan found: readable voices, and one line per file skipped."""

    voices: tuple[UserVoiceInfo, ...]
    problems: tuple[str, ...] = field(default=())


class UserVoices:
    """A folder of `<name>.npz` voice prompts ("My voices"); created on first write."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser()

    def path_for(self, name: str) -> Path:
        """The file for `name`, after checking the name cannot leave the folder."""
        name = name.strip() if isinstance(name, str) else name
        if not valid_user_voice_name(name):
            raise VoiceError(
                f"invalid voice name {name!r}: use 1-64 letters, digits, spaces, '_', '.' "
                "or '-', starting with a letter or digit"
            )
        path = self.folder / f"{name}.npz"
        if path.resolve().parent != self.folder.resolve():
            raise VoiceError(f"invalid voice name {name!r}: resolves outside {self.folder}")
        return path

    def scan(self) -> UserVoiceScan:
        """Read every voice file; unreadable ones are reported, never fatal."""
        if not self.folder.is_dir():
            return UserVoiceScan(())
        voices: list[UserVoiceInfo] = []
        problems: list[str] = []
        for path in sorted(self.folder.glob("*.npz"), key=lambda p: p.name.casefold()):
            if path.name.startswith("."):
                continue
            if not valid_user_voice_name(path.stem):
                problems.append(f"{path.name}: skipped, not a valid voice name")
                continue
            try:
                prompt = VoicePrompt.from_npz(path)
            except VoiceError as exc:
                problems.append(str(exc))
                continue
            voices.append(UserVoiceInfo(path.stem, path, prompt.duration_s))
        return UserVoiceScan(tuple(voices), tuple(problems))

    def list(self) -> builtins.list[UserVoiceInfo]:
        """Readable voices, sorted by name; see `scan()` for the files skipped."""
        return builtins.list(self.scan().voices)

    def exists(self, name: str) -> bool:
        return self._existing(name) is not None

    def _existing(self, name: str) -> Path | None:
        """The file holding `name`, matched case-insensitively (macOS/Windows folders are)."""
        path = self.path_for(name)
        if path.is_file():
            return path
        if not self.folder.is_dir():
            return None
        key = path.name.casefold()
        for other in self.folder.glob("*.npz"):
            if other.name.casefold() == key:
                return other
        return None

    def load(self, name: str) -> VoicePrompt:
        path = self._existing(name)
        if path is None:
            raise VoiceError(f"no voice named {name!r} in {self.folder}")
        return VoicePrompt.from_npz(path, name=path.stem)

    def add(self, name: str, prompt: VoicePrompt, overwrite: bool = False) -> Path:
        """Save `prompt` as `<name>.npz`; refuses preset names and, unless asked, overwriting."""
        path = self.path_for(name)
        name = path.stem
        if is_preset_name(name):
            raise VoiceError(f"{name!r} is a preset name; choose another name")
        existing = self._existing(name)
        if existing is not None and not overwrite:
            raise VoiceError(f"a voice named {existing.stem!r} already exists")
        self.folder.mkdir(parents=True, exist_ok=True)
        if existing is not None and existing != path:
            existing.unlink()  # same name in another case: replace it, keep the new spelling
        prompt.with_name(name).save_npz(path)
        return path

    def rename(self, old: str, new: str) -> Path:
        src = self._existing(old)
        if src is None:
            raise VoiceError(f"no voice named {old!r} in {self.folder}")
        dst = self.path_for(new)
        if is_preset_name(dst.stem):
            raise VoiceError(f"{dst.stem!r} is a preset name; choose another name")
        clash = self._existing(new)
        if clash is not None and clash.name.casefold() != src.name.casefold():
            raise VoiceError(f"a voice named {clash.stem!r} already exists")
        os.replace(src, dst)
        return dst

    def delete(self, name: str) -> None:
        path = self._existing(name)
        if path is None:
            raise VoiceError(f"no voice named {name!r} in {self.folder}")
        path.unlink()

    def import_file(
        self, path: str | os.PathLike[str], name: str | None = None, overwrite: bool = False
    ) -> Path:
        """Validate a foreign `.npz`, then write a clean copy (our three keys, int64)."""
        prompt = VoicePrompt.from_npz(path)
        target = name if name is not None else safe_voice_name(Path(path).stem)
        return self.add(target, prompt, overwrite=overwrite)
