"""The studio's script-editing tools: open a script or a book, edit the lexicon, map
speakers to voices; each refreshes the segment preview.

A mixin of :class:`~bark_tui.studio.app.BarkApp`, beside the long-script controller
that makes and plays what these tools prepare.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ...core.script_text import build_script

if TYPE_CHECKING:
    from ..app import BarkApp
    pass


class ScriptEditingMixin:
    """ctrl+o (open script or book), the lexicon editor, the speakers screen."""

    def refresh_segment_preview(self) -> None:
        from ...widgets.segment_list import SegmentPreview

        app = cast("BarkApp", self)
        editor = app.main.editor
        editor.query_one(SegmentPreview).show_text(editor.text)

    def action_open_script(self) -> None:
        """Put a script or a book (EPUB, Markdown, text: made into a script with one
        `# Chapter` line per chapter) in the editor; the preview shows its chapters."""
        from ...screens.prompt import PromptScreen

        app = cast("BarkApp", self)
        def check(answer: str) -> str | None:
            from bark_engine.errors import BarkError

            from ...books.extract import read_book

            path = Path(answer).expanduser()
            if not path.is_file():
                return f"No file at {path}."
            try:
                if path.suffix.lower() in (".epub", ".md", ".markdown"):
                    text = read_book(path).script()
                else:
                    text = path.read_text(encoding="utf-8")
            except BarkError as exc:
                return str(exc)
            except UnicodeDecodeError:
                return f"{path.name} is not UTF-8 text."
            except OSError as exc:
                return f"Cannot read {path}: {exc.strerror or exc}"
            app.main.editor.set_text(text)
            script = build_script(text, app.settings, None)
            chapters = f", {len(script.chapters)} chapters" if script.chapters else ""
            app.notify(f"Opened {path.name}: {len(script.segments)} segments{chapters}. "
                       "Your previous text is one undo away.", markup=False)
            return None

        app.push_screen(PromptScreen("Open script or book", "A script (.txt) or a book "
                                     "(.epub, .md) to put in the editor:", str(Path.cwd()) + "/",
                                     check, "Open"))

    def action_edit_lexicon(self) -> None:
        """Open the lexicon in $VISUAL/$EDITOR (made from a commented template the first
        time, and chosen in the settings), then say whether it reads."""
        import os
        import shlex
        import shutil
        import subprocess

        from textual.app import SuspendNotSupported

        from ...core import locations
        from ...core.settings import save_settings
        from ...text.studio import LEXICON_TEMPLATE, lexicon_for

        app = cast("BarkApp", self)
        chosen = app.settings.lexicon_file
        path = Path(chosen).expanduser() if chosen else locations.lexicon_path()
        try:
            if not path.exists():
                from bark_engine.files import atomic_write

                locations.ensure_dir(path.parent)
                with atomic_write(path, "w") as f:
                    f.write(LEXICON_TEMPLATE)
            if not chosen:
                app.settings = dataclasses.replace(app.settings, lexicon_file=str(path))
                save_settings(app.settings, locations.settings_path())
        except OSError as exc:
            app.notify(f"Cannot make the lexicon {path}: {exc}", severity="error", markup=False)
            return
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or \
            shutil.which("nano") or shutil.which("vi")
        if not editor:
            app.notify(f"No editor found: set $EDITOR, or edit {path} yourself.",
                       severity="warning", markup=False)
            return
        command = [*shlex.split(editor), str(path)]
        try:
            try:
                with app.suspend():
                    subprocess.run(command, check=False)
            except SuspendNotSupported:  # no terminal to hand over (tests, some drivers)
                subprocess.run(command, check=False, stdin=subprocess.DEVNULL,
                               capture_output=True)
        except OSError as exc:
            app.notify(f"Cannot run {editor}: {exc}", severity="error", markup=False)
            return
        lexicon, problem = lexicon_for(str(path))
        if problem:
            app.notify(problem, severity="error", markup=False, timeout=10)
        else:
            entries = sum(len(rules) for rules in lexicon.rules.values())
            app.notify(f"Lexicon {path}: {entries} entries in use.", markup=False)
        app.refresh_segment_preview()

    def action_speakers(self) -> None:
        """Map each speaker of the script to a voice; long-script switches."""
        from ...screens.speakers import SpeakersScreen

        app = cast("BarkApp", self)
        main = app.main
        default = main.voices.selected.key or None
        script = build_script(main.editor.text, app.settings, default, app.user_voices)
        presets, mine, _problems = app.voice_entries()
        voices = [(e.name, e.key) for e in presets] + [(f"{e.name} (My voices)", e.name)
                                                       for e in mine]
        app.push_screen(SpeakersScreen(app.settings, list(script.speakers_found), voices),
                        app._apply_long_settings)

    def _apply_long_settings(self, new) -> None:
        from ...core import locations
        from ...core.settings import save_settings

        app = cast("BarkApp", self)
        if new is None:
            return
        fields = ("speakers", "long_form", "continuity", "reset_every", "play_while_generating",
                  "batch", "read_numbers", "lexicon_file")
        merged = dataclasses.replace(app.settings, **{f: getattr(new, f) for f in fields})
        app.settings = merged
        try:
            save_settings(merged, locations.settings_path())
        except OSError as exc:
            app.notify(f"Speakers are in use but could not be saved: {exc}", severity="error",
                       markup=False)
        else:
            app.notify("Speakers and long-script settings saved.", markup=False)
        app.refresh_segment_preview()
        app.refresh_status()
