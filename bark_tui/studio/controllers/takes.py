"""The studio's "several takes" side: ask how many, make them as one batch, compare, keep.

A mixin of :class:`~bark_tui.studio.app.BarkApp` (like ``scripts``) so the
app file keeps to the generation queue; the work itself is in
``jobs.takes`` (worker, no widgets) and the compare screen.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from ..app import BarkApp


class SeveralTakesMixin:
    """ctrl+t: several takes of the script as one batch, compared before anything is kept."""

    def action_generate_takes(self) -> None:
        """Ask how many takes (2–4), then make them as one batch."""
        from bark_engine.config import MAX_TEXT_TOKENS

        from ...screens.prompt import PromptScreen
        from ..jobs.takes import MAX_TAKES, MIN_TAKES, parse_count

        app = cast("BarkApp", self)
        main = app.main
        if not main.editor.text.strip():
            app.notify("The script is empty — type what the voice should say.",
                       severity="warning", markup=False)
            return
        why = app._not_one_segment()
        if why:
            app.notify(why, severity="warning", markup=False, timeout=10)
            return
        if main.editor.exact and main.editor.tokens > MAX_TEXT_TOKENS:
            app.notify(f"Several takes are of one segment: at most {MAX_TEXT_TOKENS} tokens "
                       f"(the script has {main.editor.tokens}).", severity="error", markup=False)
            return

        def check(answer: str) -> str | None:
            ok = parse_count(answer) is not None
            return None if ok else f"Type a number from {MIN_TAKES} to {MAX_TAKES}."

        def done(answer: str | None) -> None:
            if answer is not None:
                app.generate_takes(parse_count(answer) or MIN_TAKES)

        app.push_screen(PromptScreen("Several takes", f"How many takes ({MIN_TAKES}–{MAX_TAKES}),"
                                     " made as one batch:", "3", check, "Generate"), done)

    def _not_one_segment(self) -> str | None:
        """Why the editor's text cannot be several takes of one plain segment (a script
        with segments, speakers or voice lines would have its names read aloud in one
        voice), or None."""
        from ...core.script_text import build_script, needs_script

        app = cast("BarkApp", self)
        default = app.main.voices.selected.key or None
        script = build_script(app.main.editor.text, app.settings, default, app.user_voices)
        if not needs_script(script, default, app.settings.long_form):
            return None
        speakers = list(dict.fromkeys(s.speaker for s in script.segments if s.speaker))
        n = len(script.segments)
        what = f"{n} segment{'s' if n != 1 else ''}" + (
            f" and speaker{'s' if len(speakers) > 1 else ''} {', '.join(speakers)}"
            if speakers else "")
        return (f"Several takes are of one plain segment in one voice; this script has {what}. "
                "Render it with ctrl+g, then try segments again one by one "
                "(ctrl+p → Re-make segment).")

    def generate_takes(self, count: int) -> None:
        from ..jobs.takes import TakesJob

        app = cast("BarkApp", self)
        main = app.main
        entry = main.voices.selected
        options = app.next_options()
        base = options.seed  # take i gets base + i
        assert base is not None  # next_options always draws one
        options = dataclasses.replace(options, seed=None)
        job = TakesJob(main.editor.text, entry.key or None, options, entry.name,
                       app.host.config.size, app.device_label, id=next(app._job_ids),
                       seeds=[base + i for i in range(count)])
        app.submit(job)

    def on_takes_ready(self, message) -> None:
        from ...screens.takes_compare import TakesCompareScreen
        from ..jobs.takes import keep_takes

        app = cast("BarkApp", self)
        gens = message.generations
        job = message.job
        app.main.generation.set_title(f"{len(gens)} takes ready to compare — nothing kept yet")

        def play(index: int) -> None:
            gen = gens[index]
            app._play_audio(gen.audio, gen.sample_rate, None,
                            f"take {index + 1} of {len(gens)} (seed {gen.seed})")

        def done(keep: list[int] | None) -> None:
            if not keep:
                app.main.generation.set_title(f"{len(gens)} takes compared — none kept")
                app.notify(f"Dropped {len(gens)} takes; nothing was kept.", markup=False)
                return
            chosen = [gens[i] for i in keep]
            app.run_worker(partial(keep_takes, app.store, job.voice, chosen, app.post_message),
                           name="keep takes", group="keep", thread=True, exit_on_error=False)

        app.push_screen(TakesCompareScreen(gens, play, f"{len(gens)} takes of “{job.snippet}”"),
                        done)

    def on_takes_kept(self, message) -> None:
        app = cast("BarkApp", self)
        if message.takes:
            app.main.refresh_history(select=message.takes[-1].id)
            ids = ", ".join(str(t.id) for t in message.takes)
            app.main.generation.set_title(f"Kept take{'s' if len(message.takes) > 1 else ''} "
                                          f"{ids} in the history")
            app.notify(f"Kept take(s) {ids} in the history.", markup=False)
        if message.error:
            app.notify(f"Could not keep the takes: {message.error}", severity="error",
                       markup=False)
