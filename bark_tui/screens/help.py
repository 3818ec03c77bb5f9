"""F1: the keys, and the cues Bark understands in a script.

The key tables are built from the bindings the classes really declare (and
their ``tooltip`` texts), so a new key shows up here by itself; only the
prose about voices and cues is written out.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from bark_engine.scripts.script import ScriptOptions

from ..core.guard import GuardedHandlers
from ..core.settings import DEFAULT_VOICE

# Long texts for Textual's own bindings that the studio keeps (by action).
TEXTUAL_ACTIONS = {
    "command_palette": "Command palette: every other action",
    "app.focus_next": "Move to the next panel",
    "app.focus_previous": "Move to the previous panel",
    "screen.copy_text": "Copy the selected text",
}


def key_names(binding: Binding) -> str:
    """``delete,d`` → ```delete` or `d```; a binding's own ``key_display`` (``/`` for
    ``slash``) where it has one."""
    keys = binding.key_display or binding.key
    return " or ".join(f"`{key.strip()}`" for key in keys.split(","))


def merged_bindings(cls: type, own_only: bool = False) -> list[Binding]:
    """A class's bindings as Textual merges them (a subclass's key wins), minus system ones.

    ``own_only`` keeps what the studio's classes declare (a table's arrow keys
    stay out of the help).
    """
    by_key: dict[str, Binding] = {}
    for base in reversed(cls.__mro__):
        if own_only and not base.__module__.startswith("bark_tui"):
            continue
        for item in base.__dict__.get("BINDINGS", []):
            binding = item if isinstance(item, Binding) else Binding(*item)
            for key in binding.key.split(","):
                by_key.pop(key.strip(), None)
            by_key[binding.key] = binding
    return [b for b in by_key.values() if not b.system]


def binding_table(bindings: Iterable[Binding]) -> str:
    rows = ["| Key | Does |", "|---|---|"]
    for binding in bindings:
        text = TEXTUAL_ACTIONS.get(binding.action) or binding.tooltip or binding.description
        rows.append(f"| {key_names(binding)} | {text} |")
    return "\n".join(rows)


def key_sections(app: App[object]) -> list[tuple[str, list[Binding]]]:
    """Every key the studio answers to, by where it works, read from the classes' bindings."""
    from ..widgets.history_table import HistoryTable
    from .main import MainScreen
    from .takes_compare import TakesCompareScreen

    palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette", "Commands")
    everywhere = [*merged_bindings(type(app)), palette, *merged_bindings(MainScreen)]
    return [
        ("Keys (they work while you type in the editor)", everywhere),
        ("In History", merged_bindings(HistoryTable, own_only=True)),
        ("Comparing several takes (enter plays the highlighted take)",
         merged_bindings(TakesCompareScreen, own_only=True)),
        ("In dialogs", dialog_bindings()),
    ]


def dialog_bindings() -> list[Binding]:
    """The dialogs' keys, each key once (the first dialog that declares it says what it does)."""
    from .error import ErrorScreen
    from .prompt import PromptScreen
    from .settings import SettingsScreen
    from .speakers import SpeakersScreen

    seen: dict[str, Binding] = {}
    for cls in (SettingsScreen, SpeakersScreen, PromptScreen, ErrorScreen):
        for binding in merged_bindings(cls, own_only=True):
            seen.setdefault(binding.key, binding)
    return list(seen.values())


def help_markdown(app: App[object]) -> str:
    """The whole page: the key tables (from the live bindings), then the fixed text."""
    parts = ["# bark-tui help"]
    for title, bindings in key_sections(app):
        parts.append(f"## {title}\n\n{binding_table(bindings)}")
    return "\n\n".join(parts) + "\n\n" + HELP_TEXT


_CUT = ScriptOptions()  # the pauses and sizes the help quotes: the parser's own defaults

HELP_TEXT = f"""\
## In Voices

Type in the filter box to narrow the list (`enter` there picks the first
match), or use the language and gender menus. `enter` on a row makes it the
voice for the next takes; `ctrl+o` plays the highlighted voice's own sample.
Until you pick one, takes use {DEFAULT_VOICE} (`default_voice` in the settings
file), the same voice `bark-tui say` uses without `--voice`; the studio then
keeps your pick. "(no voice)" lets Bark pick a speaker, which changes with the seed.

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

One Bark call speaks about 13–15 seconds (256 text tokens); the status line
under the editor counts them. A longer script is fine: see below.

## Long scripts and dialogue

A script longer than one call is cut into **segments** at sentence ends (about
{_CUT.budget_s:g} s and at most {_CUT.max_tokens} tokens each), made in batches and stitched into one take
with short fades; segment 1 plays while the rest is made (command palette,
"Speakers and long scripts": voices per speaker, continuity, segments at once,
play while generating). The preview under the editor lists the segments.

| Write | To get |
|---|---|
| `Ann: Hello there.` | a line by the speaker Ann (1–3 words before `: `), in the voice that screen gives Ann |
| a line with only `[v2/en_speaker_3]` | that voice from here on (a preset or a My-voices name) |
| a blank line | a paragraph break: a longer pause ({_CUT.paragraph_pause_s:g} s) |
| `[pause]`, `[pause 1.5s]` | exactly that silence ({_CUT.pause_s:g} s by default) |
| `# Chapter title` | a chapter: its title is read after {_CUT.chapter_pause_s:g} s of silence |
| `Title: …`, `Author: …` at the top | the book's tags (M4B files carry them) |

Between segments of one speaker the pause is {_CUT.sentence_pause_s:g} s, when the speaker or
the voice changes {_CUT.speaker_pause_s:g} s. A cancelled render keeps its finished segments: render
the same script again to go on.

Numbers are read aloud before Bark gets the text (`15%` → "fifteen percent", in
the voice's language); the preview shows what Bark will read. "Edit lexicon"
says how to pronounce names; "Speakers and long scripts" turns both off.

## Saving and books

`ctrl+s` saves a take as WAV, FLAC, MP3, Ogg, Opus or M4B (type the extension
or pick the type), mastered for a podcast (−16 LUFS), an ACX audiobook or
broadcast (−23 LUFS), with silence trimmed at the ends if asked; the dialog
offers your last choice again. "Open script or book" puts a script, or an EPUB
or Markdown book with one `#` line per chapter, in the editor. For whole books
with chapter files and subtitles use `bark-tui render` (see `--help`).

## Engine on another machine

Settings → Engine server (or `bark-tui --server URL`) uses the engine of a
`bark-tui serve` there, for example through `ssh -L 8765:localhost:8765
gpu-box`: the takes, voices and sound stay on this machine.

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
            yield Markdown(help_markdown(self.app), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-body").border_title = "Help — escape closes"
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
