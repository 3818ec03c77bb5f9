"""The studio: script, voices, generation, history and waveform on one screen.

This screen owns the layout and the take-level actions (rename, delete and
undo, save as WAV or voice, copy back, regenerate). Anything that runs the
engine or the player goes through the app, which owns the workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, TextArea

from bark_engine.config import SAMPLE_RATE
from bark_engine.scripts.sentences import estimate_tokens

from ..core.guard import GuardedHandlers, guarded
from ..widgets.generation_panel import GenerationPanel
from ..widgets.history_table import HistoryTable, take_matches, timing_s
from ..widgets.script_editor import ScriptEditor
from ..widgets.studio_header import StudioHeader
from ..widgets.voice_browser import VoiceBrowser
from ..widgets.waveform import Waveform
from . import take_actions
from .prompt import PromptScreen

if TYPE_CHECKING:
    from ..history import Take
    from ..studio.app import BarkApp

def take_label(take: Take) -> str:
    """``Take 7``; a script take adds its segments and time to first audio beside the total."""
    first, total = timing_s(take, "first_audio_s"), timing_s(take, "total_s")
    if not take.segments or first is None or total is None:
        return f"Take {take.id}"
    return (f"Take {take.id} · {len(take.segments)} segments · first audio {first:.1f} s "
            f"of {total:.1f} s")


COUNT_DELAY_S = 0.3  # wait for a pause in typing before asking the real tokenizer
PLAYHEAD_INTERVAL_S = 0.1
HISTORY_WATCH_S = 1.0  # how soon another instance's new or deleted takes show up
# Below these sizes the screen switches to its compact layout (app.tcss: -short, -narrow):
# 80×24 keeps the progress, the current take and the random-weights warning in view.
SHORT_ROWS = 32
NARROW_COLUMNS = 100


class MainScreen(GuardedHandlers, Screen[None]):
    """The one main screen (see docs/DESIGN §1 for the sketch it follows)."""

    AUTO_FOCUS = "#script"

    def __init__(self, initial_voice: str = "", cursor_blink: bool = True,
                 initial_script: str = "") -> None:
        super().__init__()
        self.initial_voice = initial_voice
        # The script and the voice as they are now, kept in plain attributes so the
        # session can be saved once the widgets are gone (`app.on_unmount`).
        self.initial_script = initial_script
        self.last_script = initial_script
        self.last_voice: str | None = initial_voice or None
        self.cursor_blink = cursor_blink  # off for tests and snapshots
        self._count_timer = None
        self.undo_stack: list[int] = []

    @property
    def bark(self) -> BarkApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StudioHeader(id="header")
        with Horizontal(id="top"):
            yield ScriptEditor(id="editor", cursor_blink=self.cursor_blink)
            yield VoiceBrowser(selected=self.initial_voice, id="voices")
        yield GenerationPanel(id="generation")
        yield HistoryTable(id="history")
        yield Waveform(id="waveform")
        yield Footer(id="footer")

    # --- parts -----------------------------------------------------------------

    @property
    def header(self) -> StudioHeader:
        return self.query_one(StudioHeader)

    @property
    def editor(self) -> ScriptEditor:
        return self.query_one(ScriptEditor)

    @property
    def voices(self) -> VoiceBrowser:
        return self.query_one(VoiceBrowser)

    @property
    def generation(self) -> GenerationPanel:
        return self.query_one(GenerationPanel)

    @property
    def history(self) -> HistoryTable:
        return self.query_one(HistoryTable)

    @property
    def waveform(self) -> Waveform:
        return self.query_one(Waveform)

    def on_resize(self, event: events.Resize) -> None:
        self.fit_layout(event.size.width, event.size.height)

    def fit_layout(self, width: int, height: int) -> None:
        """The compact layout below `SHORT_ROWS` rows or `NARROW_COLUMNS` columns."""
        self.set_class(height < SHORT_ROWS, "-short")
        self.set_class(width < NARROW_COLUMNS, "-narrow")

    def on_mount(self) -> None:
        self.fit_layout(self.app.size.width, self.app.size.height)
        self.query_one("#editor").border_title = "Script"
        self.query_one("#voices").border_title = "Voices"
        self.query_one("#generation").border_title = "Generation"
        history = self.history
        history.border_title = "History"
        history.border_subtitle = (
            "enter play · n rename · d delete · u undo · e edit · g regenerate · v voice · / filter"
        )
        if self.initial_script and not self.editor.text:
            self.editor.set_text(self.initial_script)
        self.refresh_voices()
        self.refresh_history()
        self.set_interval(PLAYHEAD_INTERVAL_S,
                          guarded(self, self._tick_playhead, "the playhead timer"))
        store = self.bark.store
        self._history_version = store.data_version() if store is not None else 0
        self.set_interval(HISTORY_WATCH_S,
                          guarded(self, self._watch_history, "the history watch"))
        self.bark.restore_queue()
        self.bark.refresh_status()
        self.editor.area.focus()

    # --- voices and history --------------------------------------------------------

    def refresh_voices(self) -> None:
        presets, mine, problems = self.bark.voice_entries()
        self.voices.set_voices(presets, mine)
        for problem in problems:
            self.notify(f"My voices: {problem}", severity="warning", markup=False)

    def refresh_history(self, select: int | None = None) -> None:
        """Reload the takes; ``select`` (a new or changed take) is highlighted, and
        a filter that would hide it is cleared, saying so."""
        store = self.bark.store
        takes = [] if store is None else store.list_takes()
        history = self.history
        chosen = next((t for t in takes if t.id == select), None)
        if chosen is not None and history.query and not take_matches(chosen, history.query):
            self.notify(f"History filter “{history.query}” cleared to show take {select}.",
                        markup=False)
            history.query = ""
        history.set_takes(takes, keep=select)
        self._title_history()
        self.show_selected_take()

    def ask_history_filter(self) -> None:
        def done(answer: str | None) -> None:
            if answer is not None:
                self.history.set_query(answer)
                self._title_history()
                self.show_selected_take()

        self.app.push_screen(PromptScreen(
            "Filter history", "Show the takes whose text, name, voice or seed contain "
            "(empty: all):", self.history.query, ok_label="Filter", allow_empty=True), done)

    def _title_history(self) -> None:
        history = self.history
        history.border_title = "History" if not history.query else (
            f"History · “{history.query}”: {len(history.takes)} of {len(history.all_takes)}")

    def show_selected_take(self) -> None:
        take = self.history.current
        if take is None and self.history.all_takes:
            self.waveform.show_audio(
                None, SAMPLE_RATE, f"No take matches “{self.history.query}” — / changes the filter")
            return
        if take is None:
            self.waveform.show_audio(None, SAMPLE_RATE, "No takes yet — ctrl+g generates one")
            return
        audio = self.bark.take_audio(take, quiet=True)
        if audio is None:
            self.waveform.show_audio(None, take.sample_rate, f"Take {take.id}: WAV MISSING")
        else:
            self.waveform.show_audio(audio, take.sample_rate, take_label(take))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.history:
            self.show_selected_take()

    def on_history_table_action(self, message: HistoryTable.Action) -> None:
        message.stop()
        self.take_action(message.action, message.take_id)

    def take_action(self, action: str, take_id: int | None = None) -> None:
        """Run ``action`` on a take (the highlighted one when ``take_id`` is None)."""
        if action == "undo":
            take_actions.undo_delete(self)
            return
        if action == "filter":
            self.ask_history_filter()
            return
        take: Take | None = (
            self.history.current if take_id is None else self.history.takes.get(take_id)
        )
        if take is None:
            hidden = bool(self.history.query and self.history.all_takes)  # all filtered out
            self.notify("No take matches the filter — / changes it." if hidden else
                        "No take selected — generate one first (ctrl+g).", severity="warning")
            return
        handler = take_actions.HANDLERS.get(action)
        if handler is None:
            raise ValueError(f"unknown take action {action!r}")
        store = self.bark.store
        fresh = store.get(take.id) if store is not None else take
        if fresh is None or fresh.is_deleted:  # another instance deleted it meanwhile
            self.notify(f"Take {take.id} was deleted elsewhere (another bark-tui on this "
                        "history); the list is up to date again.", severity="warning",
                        markup=False)
            self.refresh_history()
            return
        handler(self, fresh)

    # --- script ---------------------------------------------------------------------

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id != "script":
            return
        text = event.text_area.text
        self.last_script = text  # what the session keeps when the studio closes
        self.editor.show_count(text, estimate_tokens(text), exact=False)
        if self._count_timer is not None:
            self._count_timer.stop()
        self._count_timer = self.set_timer(
            COUNT_DELAY_S, guarded(self, self.bark.count_tokens, "the token count timer"))

    def on_voice_browser_selected(self, event: VoiceBrowser.Selected) -> None:
        self.last_voice = event.entry.key
        self.bark.refresh_status()
        self.bark.refresh_segment_preview()  # the selected voice is the script's default

    def _watch_history(self) -> None:
        """Takes another instance added or deleted show up here (one cheap query a tick)."""
        store = self.bark.store
        if store is None:
            return
        version = store.data_version()
        if version != self._history_version:
            self._history_version = version
            self.refresh_history()

    # --- playhead ---------------------------------------------------------------------

    def _tick_playhead(self) -> None:
        player = self.bark.player_if_started
        waveform = self.waveform
        playing = self.bark.playing_take
        if (
            player is not None
            and player.is_playing
            and playing is not None
            and self.history.current_id == playing
        ):
            waveform.position = player.position_s
            return
        if waveform.position is not None:
            waveform.position = None
