"""What can be done to one take, as plain functions of the main screen and the take.

Each one either finishes or says why not in a notice, and none of them loses
anything: a rename or a save with a bad answer keeps its dialog open with the
answer in it; a delete is soft and undoable; a missing WAV is reported, and
the take stays in the history (its tokens can still make a voice).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bark_engine.errors import VoiceError
from bark_engine.voices.catalog import VoicePrompt, safe_voice_name

from .prompt import PromptScreen

if TYPE_CHECKING:
    from ..history import Take
    from .main import MainScreen


def _error(screen: MainScreen, text: str) -> None:
    screen.notify(text, severity="error", markup=False)


def play(screen: MainScreen, take: Take) -> None:
    screen.bark.play_take(take)


def edit(screen: MainScreen, take: Take) -> None:
    """Copy the take's text back into the editor (undo in the editor restores the old)."""
    screen.editor.set_text(take.text)
    screen.notify(f"Take {take.id}'s text is in the editor.", markup=False)


def regenerate(screen: MainScreen, take: Take) -> None:
    screen.bark.regenerate(take)


def rename(screen: MainScreen, take: Take) -> None:
    store = screen.bark.store
    if store is None:
        return

    def check(name: str) -> str | None:
        try:
            store.rename(take.id, name)
        except Exception as exc:  # noqa: BLE001 - the dialog shows it and stays open
            return str(exc)
        return None

    def done(name: str | None) -> None:
        if name is not None:
            screen.refresh_history(select=take.id)
            screen.notify(f"Take {take.id} is now “{name}”.", markup=False)

    screen.app.push_screen(
        PromptScreen("Rename take", f"New name for take {take.id}:", take.name, check, "Rename"),
        done,
    )


def delete(screen: MainScreen, take: Take) -> None:
    store = screen.bark.store
    if store is None:
        return
    if screen.bark.playing_take == take.id:
        screen.bark.stop_playback()
    try:
        store.delete(take.id)
    except Exception as exc:  # noqa: BLE001 - any store failure is a notice, not a crash
        _error(screen, f"Could not delete take {take.id}: {exc}")
        return
    screen.undo_stack.append(take.id)
    screen.refresh_history()
    screen.notify(
        f"Deleted take {take.id} (“{take.name}”). Press u in History, or “Undo delete” "
        "in ctrl+p, to bring it back.",
        markup=False,
    )


def undo_delete(screen: MainScreen) -> None:
    store = screen.bark.store
    if store is None or not screen.undo_stack:
        screen.notify("Nothing to undo.", severity="warning")
        return
    take_id = screen.undo_stack.pop()
    try:
        store.undelete(take_id)
    except Exception as exc:  # noqa: BLE001
        _error(screen, f"Could not restore take {take_id}: {exc}")
        return
    screen.refresh_history(select=take_id)
    screen.notify(f"Take {take_id} is back.", markup=False)


def save_voice(screen: MainScreen, take: Take) -> None:
    """Turn the take's tokens into a voice under My voices."""
    try:
        tokens = take.load_tokens()
        prompt = VoicePrompt.from_arrays(
            tokens["semantic_prompt"], tokens["coarse_prompt"], tokens["fine_prompt"],
            name=take.name, source=f"take {take.id}",
        )
    except (OSError, KeyError, VoiceError) as exc:
        _error(screen, f"Take {take.id} cannot become a voice: {exc}")
        return
    voices = screen.bark.user_voices

    def check(name: str) -> str | None:
        try:
            voices.add(name, prompt)
        except (VoiceError, OSError) as exc:
            return str(exc)
        return None

    def done(name: str | None) -> None:
        if name is None:
            return
        screen.refresh_voices()
        screen.voices.reveal(str(voices.path_for(name)))
        screen.notify(f"Saved take {take.id} as the voice “{name}” (under My voices).",
                      markup=False)

    screen.app.push_screen(
        PromptScreen("Save take as voice", "Name of the new voice:",
                     safe_voice_name(take.name, "my voice"), check, "Save voice"),
        done,
    )


def wav_file_name(take: Take, ext: str = "wav") -> str:
    """``take-12-hello-there.wav``: safe on every file system."""
    slug = re.sub(r"[^\w]+", "-", take.name.lower(), flags=re.UNICODE).strip("-")[:40]
    return f"take-{take.id}-{slug or 'untitled'}.{ext}"


def check_audio_target(answer: str, default_name: str, ext: str = "wav"
                       ) -> tuple[Path | None, str | None]:
    """Where the file will go (an absolute path), or why it cannot go there (nothing is
    written here). A folder gets `default_name` inside it; a name without an extension
    gets `.ext`; an extension no format has is refused."""
    from ..finish.formats import EXTENSIONS

    path = Path(answer).expanduser()
    if path.is_dir():
        path = path / default_name
    elif not path.suffix:
        path = path.with_name(f"{path.name}.{ext}")
    elif path.suffix.lower() not in EXTENSIONS:
        return None, (f"Cannot save as '{path.suffix}': choose one of "
                      f"{', '.join(EXTENSIONS)} (or pick a type below).")
    path = path.parent.resolve() / path.name  # a relative answer, shown where it lands
    if path.is_dir():
        return None, f"{path} is a folder; add a file name."
    folder = path.parent
    if not folder.is_dir():
        return None, f"The folder {folder} does not exist. Create it or choose another one."
    if path.exists():
        return None, f"{path.name} already exists in {folder}; choose another name."
    if not os.access(folder, os.W_OK | os.X_OK):
        return None, f"Cannot write in {folder} (permission denied); choose another folder."
    return path, None


def save_wav(screen: MainScreen, take: Take) -> None:
    """Ask where, in which format and with which mastering (the last choice is offered
    again), then finish and write the file atomically."""
    from .save_audio import SaveAudioScreen

    loaded = screen.bark.take_audio(take)
    if loaded is None:
        return
    audio, sample_rate = loaded, take.sample_rate
    folder = screen.bark.output_dir(create_default=True)
    app = screen.bark
    chosen = app.settings

    def check(answer: str, ext: str) -> tuple[Path | None, str | None]:
        return check_audio_target(answer, wav_file_name(take, ext), ext)

    def save(path: Path, master: str, trim: bool) -> str:
        return save_take_file(path, audio, sample_rate, take.text, master, trim)

    def done(choice) -> None:
        if choice is None:
            return
        screen.notify(f"Saved {choice.path}{choice.summary}", markup=False)
        app.remember_save_choice(choice.ext, choice.master, choice.trim)

    screen.app.push_screen(
        SaveAudioScreen("Save take", f"Save take {take.id} to:",
                        str(folder / wav_file_name(take, chosen.save_format)),
                        chosen.save_format, chosen.save_master, chosen.save_trim, check, save,
                        m4b_available()),
        done,
    )


def m4b_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("av") is not None


def save_take_file(path: Path, audio, sample_rate: int, text: str, master: str,
                   trim: bool) -> str:
    """Write one take as `path`'s format: a plain 24 kHz WAV by our own writer, anything
    else through the finishing chain. Returns the notice's tail (what it measures)."""
    from bark_engine.audio import write_wav

    from ..finish.deliver import Finishing, Piece, finish, write_finished
    from ..finish.formats import choose_encoding
    from ..finish.loudness import custom_mastering

    encoding = choose_encoding(path)
    mastering = custom_mastering(master, None, None)
    if encoding.format.name == "WAV" and encoding.rate == sample_rate and mastering is None \
            and not trim:
        write_wav(path, audio, sample_rate)
        return ""
    finishing = Finishing(encoding, mastering, trim=trim)
    written = write_finished(path, finish([Piece(audio, 0.0, text)], sample_rate, finishing),
                             finishing)
    tail = f" · {encoding.label}"
    if written.measured is not None:
        tail += f" · {written.measured.line()}"
    return tail


HANDLERS: dict[str, Callable[[MainScreen, Take], None]] = {
    "play": play,
    "edit": edit,
    "regenerate": regenerate,
    "rename": rename,
    "delete": delete,
    "save_voice": save_voice,
    "save_wav": save_wav,
}
