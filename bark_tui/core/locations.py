"""Where bark-tui keeps its files.

Small functions rather than module constants so that the environment is read
when a path is needed, never at import time: tests (and users) can point the
whole app somewhere else with one variable, ``BARK_TUI_HOME``, set at any
moment before the path is asked for.

Without the override the folders follow the XDG conventions via platformdirs:

- config (``settings.json``): ``~/.config/bark-tui``
- data (history database, takes, user voices): ``~/.local/share/bark-tui``
- cache: ``~/.cache/bark-tui``
- exports (the default "Save" folder): the user's music folder
  (``~/Music/bark-tui``), because that is where a person looks for audio they
  saved; it is not hidden under a dot-folder.

With ``BARK_TUI_HOME=DIR`` everything lives under DIR: ``DIR/config``,
``DIR/data``, ``DIR/cache`` and ``DIR/exports``. The app uses this variable
rather than ``XDG_CONFIG_HOME`` because the playback tests move
``XDG_CONFIG_HOME`` to install their own ALSA configuration.

Nothing here creates a folder; callers that write use :func:`ensure_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "bark-tui"
HOME_ENV = "BARK_TUI_HOME"


def home_override() -> Path | None:
    """The folder named by ``BARK_TUI_HOME``, or None when unset or empty."""
    value = os.environ.get(HOME_ENV, "").strip()
    if not value:
        return None
    return Path(value).expanduser()


def _pick(sub: str, xdg: str) -> Path:
    home = home_override()
    if home is not None:
        return home / sub
    return Path(xdg)


def config_dir() -> Path:
    """Settings live here."""
    return _pick("config", platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Work the user would miss if lost: history, takes, own voices."""
    return _pick("data", platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Anything that can be rebuilt (never model weights: huggingface_hub owns those)."""
    return _pick("cache", platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def default_output_dir() -> Path:
    """Where "Save" suggests writing when the settings name no folder."""
    home = home_override()
    if home is not None:
        return home / "exports"
    return Path(platformdirs.user_music_dir()) / APP_NAME


def settings_path() -> Path:
    """The JSON settings file."""
    return config_dir() / "settings.json"


def session_path() -> Path:
    """The script and voice the studio had when it closed (`session`)."""
    return data_dir() / "session.json"


def lexicon_path() -> Path:
    """The studio's lexicon (how to say names), made by "Edit lexicon" when none is set."""
    return config_dir() / "lexicon.toml"


def history_db_path() -> Path:
    """The SQLite history of takes."""
    return data_dir() / "history.sqlite3"


def takes_dir() -> Path:
    """WAV and token files of every take, named by UUID; the history rows point here."""
    return data_dir() / "takes"


def user_voices_dir() -> Path:
    """Voice prompts (.npz) the user saved from takes or imported."""
    return data_dir() / "voices"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and return it, so callers can chain it."""
    path.mkdir(parents=True, exist_ok=True)
    return path
