"""The app's listening side: auditions, take audio (cached), the player and its keys.

A mixin of :class:`~bark_tui.studio.app.BarkApp`; the app's ``PlaybackEnded``
handler calls this part before the segment queue's. The player (and PortAudio) is only loaded on the first play.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from bark_engine.config import SAMPLE_RATE
from bark_engine.voices.catalog import PRESETS

from ...core import locations
from ...history import TakeFileMissing
from ...widgets.voice_browser import NO_VOICE, VoiceEntry
from ..jobs.take import run_audition
from ..messages import AuditionReady, PlaybackEnded, Problem

if TYPE_CHECKING:
    from ...core.job import Job
    from ...history import Take
    from ..app import BarkApp

AUDIO_CACHE = 16  # decoded takes / auditions kept in memory


class PlaybackMixin:
    """Audition, play / stop, the take-audio cache, the Save dialog's folder."""

    def voice_entries(self) -> tuple[list[VoiceEntry], list[VoiceEntry], list[str]]:
        """Presets (v2 and the announcer; the v1 aliases repeat v2) and My voices."""
        app = cast("BarkApp", self)
        presets = [
            VoiceEntry(p.name, p.name, p.language, p.gender or "—", p.prompt_seconds)
            for p in PRESETS
            if p.version != "v1"
        ]
        scan = app.user_voices.scan()
        mine = [VoiceEntry(str(v.path), v.name, "—", "—", v.duration_s, mine=True)
                for v in scan.voices]
        return presets, mine, list(scan.problems)

    def action_audition(self) -> None:
        app = cast("BarkApp", self)
        entry = app.main.voices.highlighted
        if entry is None or entry.key == NO_VOICE:
            app.notify("Highlight a voice in the Voices list to audition it.",
                       severity="warning")
            return
        cached = app._audio.get(("voice", entry.key))
        if cached is not None:
            app._play_audio(cached, SAMPLE_RATE, None, f"Auditioning {entry.name}")
            return
        app.notify(f"Decoding {entry.name}'s own sample…", markup=False, timeout=2)
        app.run_worker(
            partial(run_audition, app.host, entry.key, app.post_message),
            name=f"audition {entry.name}", group="audition", exclusive=True, thread=True,
            exit_on_error=False,
        )

    def on_audition_ready(self, message: AuditionReady) -> None:
        app = cast("BarkApp", self)
        app._remember(("voice", message.voice), message.audio)
        entry = app.main.voices.entry(message.voice)
        name = entry.name if entry else message.voice
        app._play_audio(message.audio, message.sample_rate, None, f"Auditioning {name}")

    def on_problem(self, message: Problem) -> None:
        app = cast("BarkApp", self)
        app.notify(message.text, severity="error", markup=False, timeout=8)


    def _remember(self, key: object, audio: np.ndarray) -> None:
        app = cast("BarkApp", self)
        app._audio[key] = audio
        while len(app._audio) > AUDIO_CACHE:
            app._audio.pop(next(iter(app._audio)))

    def take_audio(self, take: Take, quiet: bool = False) -> np.ndarray | None:
        """The take's samples (cached), or None with a notice when its WAV is gone."""
        app = cast("BarkApp", self)
        cached = app._audio.get(("take", take.id))
        if cached is not None:
            return cached
        try:
            audio, _rate = take.load_audio()
        except (TakeFileMissing, OSError, ValueError) as exc:
            if not quiet:
                app.notify(str(exc), severity="error", markup=False)
            return None
        app._remember(("take", take.id), audio)
        return audio

    @property
    def player_if_started(self):
        app = cast("BarkApp", self)
        return app._player

    def _player_ready(self):
        app = cast("BarkApp", self)
        if app._player is None:
            from ...core.player import Player

            app._player = Player()
        reason = app._player.unavailable_reason
        if reason is not None:
            if not app._playback_refused:
                app._playback_refused = True
                app.notify(reason, severity="warning", markup=False, timeout=8)
            return None
        return app._player

    def _play_audio(self, audio: np.ndarray, rate: int, take_id: int | None, what: str) -> bool:
        from ...core.player import PlaybackUnavailable

        app = cast("BarkApp", self)
        player = app._player_ready()
        if player is None:
            return False
        app._play_token += 1
        token = app._play_token
        try:
            player.play(audio, rate, on_done=lambda: app.post_message(PlaybackEnded(token)))
        except PlaybackUnavailable as exc:
            app.notify(exc.reason, severity="warning", markup=False)
            return False
        app.playing_take = take_id
        app.main.header.engine_state = f"▶ {what}"
        return True

    def play_take(self, take: Take) -> None:
        app = cast("BarkApp", self)
        audio = app.take_audio(take)
        if audio is not None:
            app._play_audio(audio, take.sample_rate, take.id, f"playing take {take.id}")

    def action_play_unsaved(self) -> None:
        """Play the last take the history could not keep (a full disk), from memory."""
        app = cast("BarkApp", self)
        unsaved = app._unsaved_or_say()
        if unsaved is None:
            return
        job, audio = unsaved
        app._play_audio(audio, SAMPLE_RATE, None, f"playing unsaved job {job.id}")

    def _unsaved_or_say(self) -> tuple[Job, np.ndarray] | None:
        """The take kept in memory, or None after saying there is none."""
        app = cast("BarkApp", self)
        if app.unsaved is None:
            app.notify("There is no unsaved take: every take made is in History.",
                       markup=False)
        return app.unsaved

    def action_save_unsaved(self) -> None:
        """Write the take the history could not keep to a WAV the user names (another
        disk, say); it stays in memory until that works or another one replaces it."""
        from bark_engine.audio import write_wav
        from bark_engine.errors import BarkError

        from ...screens.prompt import PromptScreen

        app = cast("BarkApp", self)
        unsaved = app._unsaved_or_say()
        if unsaved is None:
            return
        job, audio = unsaved
        written: list[Path] = []

        def check(answer: str) -> str | None:
            path = Path(answer).expanduser()
            if path.suffix.lower() != ".wav":
                path = path.with_name(path.name + ".wav")
            if path.exists():
                return f"{path} exists; choose another name."
            try:
                write_wav(path, audio, SAMPLE_RATE)
            except (BarkError, OSError) as exc:
                return f"Could not write {path}: {exc}"
            written.append(path)
            return None

        def done(answer: str | None) -> None:
            if answer is not None and written:
                app.unsaved = None
                app.notify(f"Saved the unsaved take (job {job.id}) to {written[-1]}.",
                           markup=False)

        default = app.output_dir() / f"bark-unsaved-job{job.id}.wav"
        app.push_screen(PromptScreen("Save unsaved take", "WAV file to write (any folder):",
                                     str(default), check, "Save"), done)

    def stop_playback(self) -> None:
        app = cast("BarkApp", self)
        if app._player is not None:
            app._player.stop()
        app.playing_take = None
        app.stop_segment_playback()  # a script being made stays quiet from here on
        app.main.header.engine_state = "stopped"

    def playback_playback_ended(self, message: PlaybackEnded) -> None:
        app = cast("BarkApp", self)
        if message.token == app._play_token:
            app.playing_take = None
            app.main.header.engine_state = "played"

    def action_play(self) -> None:
        app = cast("BarkApp", self)
        if app._player is not None and app._player.is_playing:
            app.stop_playback()
        else:
            app.main.take_action("play")

    def action_save_wav(self) -> None:
        app = cast("BarkApp", self)
        app.main.take_action("save_wav")

    def action_take(self, action: str) -> None:
        app = cast("BarkApp", self)
        app.main.take_action(action)

    def output_dir(self, create_default: bool = False) -> Path:
        """The folder the Save dialog suggests; the default one is created, a chosen one never."""
        app = cast("BarkApp", self)
        if app.settings.output_dir:
            return Path(app.settings.output_dir).expanduser()
        folder = locations.default_output_dir()
        if create_default:
            with contextlib.suppress(OSError):  # the save dialog says what is wrong
                locations.ensure_dir(folder)
        return folder
