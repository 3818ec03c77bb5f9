"""The app's listening side: auditions, take audio (cached), the player and its keys.

A mixin of :class:`~bark_tui.studio.app.BarkApp`; the app's ``PlaybackEnded``
handler calls this part before the segment queue's. The player (and PortAudio) is only loaded on the first play.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bark_engine.config import SAMPLE_RATE
from bark_engine.voices.catalog import PRESETS

from ...core import locations
from ...history import TakeFileMissing
from ...widgets.voice_browser import NO_VOICE, VoiceEntry
from ..jobs.take import run_audition
from ..messages import AuditionReady, PlaybackEnded, Problem

if TYPE_CHECKING:
    from ...history import Take

AUDIO_CACHE = 16  # decoded takes / auditions kept in memory


class PlaybackMixin:
    """Audition, play / stop, the take-audio cache, the Save dialog's folder."""

    def voice_entries(self) -> tuple[list[VoiceEntry], list[VoiceEntry], list[str]]:
        """Presets (v2 and the announcer; the v1 aliases repeat v2) and My voices."""
        presets = [
            VoiceEntry(p.name, p.name, p.language, p.gender or "—", p.prompt_seconds)
            for p in PRESETS
            if p.version != "v1"
        ]
        scan = self.user_voices.scan()
        mine = [VoiceEntry(str(v.path), v.name, "—", "—", v.duration_s, mine=True)
                for v in scan.voices]
        return presets, mine, list(scan.problems)

    def action_audition(self) -> None:
        entry = self.main.voices.highlighted
        if entry is None or entry.key == NO_VOICE:
            self.notify("Highlight a voice in the Voices list to audition it.",
                        severity="warning")
            return
        cached = self._audio.get(("voice", entry.key))
        if cached is not None:
            self._play_audio(cached, SAMPLE_RATE, None, f"Auditioning {entry.name}")
            return
        self.notify(f"Decoding {entry.name}'s own sample…", markup=False, timeout=2)
        self.run_worker(
            partial(run_audition, self.host, entry.key, self.post_message),
            name=f"audition {entry.name}", group="audition", exclusive=True, thread=True,
            exit_on_error=False,
        )

    def on_audition_ready(self, message: AuditionReady) -> None:
        self._remember(("voice", message.voice), message.audio)
        entry = self.main.voices.entry(message.voice)
        name = entry.name if entry else message.voice
        self._play_audio(message.audio, message.sample_rate, None, f"Auditioning {name}")

    def on_problem(self, message: Problem) -> None:
        self.notify(message.text, severity="error", markup=False, timeout=8)


    def _remember(self, key: object, audio: np.ndarray) -> None:
        self._audio[key] = audio
        while len(self._audio) > AUDIO_CACHE:
            self._audio.pop(next(iter(self._audio)))

    def take_audio(self, take: Take, quiet: bool = False) -> np.ndarray | None:
        """The take's samples (cached), or None with a notice when its WAV is gone."""
        cached = self._audio.get(("take", take.id))
        if cached is not None:
            return cached
        try:
            audio, _rate = take.load_audio()
        except (TakeFileMissing, OSError, ValueError) as exc:
            if not quiet:
                self.notify(str(exc), severity="error", markup=False)
            return None
        self._remember(("take", take.id), audio)
        return audio

    @property
    def player_if_started(self):
        return self._player

    def _player_ready(self):
        if self._player is None:
            from ...core.player import Player

            self._player = Player()
        reason = self._player.unavailable_reason
        if reason is not None:
            if not self._playback_refused:
                self._playback_refused = True
                self.notify(reason, severity="warning", markup=False, timeout=8)
            return None
        return self._player

    def _play_audio(self, audio: np.ndarray, rate: int, take_id: int | None, what: str) -> bool:
        from ...core.player import PlaybackUnavailable

        player = self._player_ready()
        if player is None:
            return False
        self._play_token += 1
        token = self._play_token
        try:
            player.play(audio, rate, on_done=lambda: self.post_message(PlaybackEnded(token)))
        except PlaybackUnavailable as exc:
            self.notify(exc.reason, severity="warning", markup=False)
            return False
        self.playing_take = take_id
        self.main.header.engine_state = f"▶ {what}"
        return True

    def play_take(self, take: Take) -> None:
        audio = self.take_audio(take)
        if audio is not None:
            self._play_audio(audio, take.sample_rate, take.id, f"playing take {take.id}")

    def action_play_unsaved(self) -> None:
        """Play the last take the history could not keep (a full disk), from memory."""
        if self.unsaved is None:
            self.notify("There is no unsaved take: every take made is in History.",
                        markup=False)
            return
        job, audio = self.unsaved
        self._play_audio(audio, SAMPLE_RATE, None, f"playing unsaved job {job.id}")

    def action_save_unsaved(self) -> None:
        """Write the take the history could not keep to a WAV the user names (another
        disk, say); it stays in memory until that works or another one replaces it."""
        from bark_engine.audio import write_wav
        from bark_engine.errors import BarkError

        from ...screens.prompt import PromptScreen

        if self.unsaved is None:
            self.notify("There is no unsaved take: every take made is in History.",
                        markup=False)
            return
        job, audio = self.unsaved
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
                self.unsaved = None
                self.notify(f"Saved the unsaved take (job {job.id}) to {written[-1]}.",
                            markup=False)

        default = self.output_dir() / f"bark-unsaved-job{job.id}.wav"
        self.push_screen(PromptScreen("Save unsaved take", "WAV file to write (any folder):",
                                      str(default), check, "Save"), done)

    def stop_playback(self) -> None:
        if self._player is not None:
            self._player.stop()
        self.playing_take = None
        self.stop_segment_playback()  # a script being made stays quiet from here on
        self.main.header.engine_state = "stopped"

    def playback_playback_ended(self, message: PlaybackEnded) -> None:
        if message.token == self._play_token:
            self.playing_take = None
            self.main.header.engine_state = "played"

    def action_play(self) -> None:
        if self._player is not None and self._player.is_playing:
            self.stop_playback()
        else:
            self.main.take_action("play")

    def action_save_wav(self) -> None:
        self.main.take_action("save_wav")

    def action_take(self, action: str) -> None:
        self.main.take_action(action)

    def output_dir(self, create_default: bool = False) -> Path:
        """The folder the Save dialog suggests; the default one is created, a chosen one never."""
        if self.settings.output_dir:
            return Path(self.settings.output_dir).expanduser()
        folder = locations.default_output_dir()
        if create_default:
            with contextlib.suppress(OSError):  # the save dialog says what is wrong
                locations.ensure_dir(folder)
        return folder
