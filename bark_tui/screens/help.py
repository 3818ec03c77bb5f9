"""F1: the keys, and the cues Bark understands in a script."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..guard import GuardedHandlers

HELP_TEXT = """\
# bark-tui help

## Keys (they work while you type in the editor)

| Key | Does |
|---|---|
| `ctrl+g` | Generate a take from the script (queues it when one is running) |
| `escape` | Cancel the take being generated |
| `ctrl+r` | Play / stop the take selected in History |
| `ctrl+o` | Audition the highlighted voice (its own sample, no generation) |
| `ctrl+s` | Save the selected take as a WAV file |
| `ctrl+p` | Command palette: every other action |
| `f1` | This help |
| `ctrl+q` | Quit (a running generation is cancelled) |
| `tab` | Move to the next panel (`shift+tab`: the previous one) |

## In History

| Key | Does |
|---|---|
| `enter` | Play the take |
| `n` | Rename it |
| `delete` or `d` | Delete it (soft: `u` brings it back) |
| `u` | Undo the last delete |
| `e` | Copy its text back into the editor |
| `g` | Regenerate it with the same seed and settings |
| `v` | Save it as a voice under My voices |

## In Voices

Type in the filter box to narrow the list (`enter` there picks the first
match), or use the language and gender menus. `enter` on a row makes it the
voice for the next takes; `ctrl+o` plays the highlighted voice's own sample.

## Cues Bark understands

Bark is not a strict text-to-speech model: it follows hints in the text.

| Write | To get |
|---|---|
| `[laughs]`, `[laughter]` | laughter |
| `[sighs]` | a sigh |
| `[music]` | music |
| `[gasps]`, `[clears throat]` | a gasp, throat clearing |
| `♪ la la la ♪` | singing |
| `…` or `—` | a hesitation |
| `CAPITALS` | emphasis on a word |
| `[MAN]` / `[WOMAN]` | bias the speaker's voice |

A take holds about 13–15 seconds of audio and the script at most 256 tokens;
the status line under the editor counts them for you.

With **random test weights** (the header says so) every take is noise: that
is expected, the app is being tested without the real model.
"""


class HelpScreen(GuardedHandlers, ModalScreen[None]):
    """A scrollable page; escape, f1 or q closes it."""

    BINDINGS = [
        Binding("escape,f1,q", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(HELP_TEXT, id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-body").border_title = "Help — escape closes"
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
