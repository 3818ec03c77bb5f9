"""The command palette (ctrl+p): every action, including those without a key.

The footer stays short because everything else lives here, each with one
line saying what it does.
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, help, action) — actions are app actions, run with ``app.run_action``.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("Generate", "Make a take from the script (ctrl+g)", "generate"),
    ("Cancel generation", "Stop the take being generated (escape)", "cancel"),
    ("Clear queue", "Drop the jobs waiting in the queue", "clear_queue"),
    ("Play / stop take", "Play the selected take, or stop (ctrl+r)", "play"),
    ("Audition voice", "Hear the highlighted voice's own sample (ctrl+o)", "audition"),
    ("Save take", "Write the selected take to a file: WAV, FLAC, MP3, Ogg, Opus, M4B; "
     "mastered for podcast, audiobook or broadcast (ctrl+s)", "save_wav"),
    ("Save take as voice", "Keep the selected take as a voice under My voices",
     "take('save_voice')"),
    ("Play unsaved take", "Play the last take the history could not keep (a full disk)",
     "play_unsaved"),
    ("Save unsaved take", "Write the take the history could not keep to a WAV elsewhere",
     "save_unsaved"),
    ("Rename take", "Give the selected take a name", "take('rename')"),
    ("Delete take", "Remove the selected take from the history (undoable)", "take('delete')"),
    ("Undo delete", "Bring back the last deleted take", "take('undo')"),
    ("Regenerate take", "Generate the selected take again with its seed and settings",
     "take('regenerate')"),
    ("Copy take text to editor", "Put the selected take's text back in the script",
     "take('edit')"),
    ("Speakers and long scripts", "Pick each speaker's voice; long-script profile, voice "
     "continuity, play while generating, numbers read aloud, lexicon", "speakers"),
    ("Open script or book", "Put a script file, or an EPUB or Markdown book (one # line per "
     "chapter), in the editor", "open_script"),
    ("Edit lexicon", "How Bark says names and jargon: a TOML file, opened in $EDITOR",
     "edit_lexicon"),
    ("Generate several takes", "Make 2–4 takes of the script as one batch, compare them, "
     "keep the best (ctrl+t)", "generate_takes"),
    ("Re-make segment", "Generate one segment of the selected script take again (new seed) "
     "and re-stitch it", "remake_segment"),
    ("Import voice file", "Add a Bark voice .npz to My voices", "import_voice"),
    ("Settings", "Model, device, temperatures, seeds, output folder, theme", "settings"),
    ("Help", "Keys and Bark's cues such as [laughs] (f1)", "help"),
)


class StudioCommands(Provider):
    """bark-tui's own commands, next to Textual's (quit, theme, keys, screenshot)."""

    async def discover(self) -> Hits:
        for title, help_text, action in COMMANDS:
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, action),
                    help=help_text,
                )
