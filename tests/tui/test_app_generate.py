"""The whole workflow on the real engine (tiny random weights): script → take → files.

One app per test, so the models load once and several takes share it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bark_engine.audio import read_wav
from bark_engine.model import kernels
from bark_engine.voices.catalog import VoicePrompt
from bark_tui.core import locations
from bark_tui.screens.prompt import PromptScreen

from .test_app_support import (
    fresh_home,
    generate_take,
    has_message,
    make_app,
    type_text,
    wait_until,
    write_settings,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


async def answer_prompt(pilot, app, text: str | None = None) -> PromptScreen:
    """Wait for the one-field dialog, optionally replace its answer, press enter."""
    await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), 10, "the dialog")
    screen = app.screen
    if text is not None:
        screen.query_one("#prompt-input").value = text
    await pilot.press("enter")
    await pilot.pause()
    return screen


async def test_script_to_take_to_wav_and_voice(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        # pick a voice by filtering, then write the script
        main.query_one("#voice-filter").focus()
        await type_text(pilot, "en_speaker_0")
        await pilot.press("enter")
        assert main.voices.selected.key == "v2/en_speaker_0"
        main.editor.area.focus()
        await type_text(pilot, "Hello [laughs] there.")

        take = await generate_take(pilot, app)

        # every stage reached 100 %
        for stage in ("semantic", "coarse", "fine", "decode"):
            row = main.generation.row(stage)
            assert row.state == "done" and row.percent == 100.0, stage
        # the take is in the history, newest first, with its facts
        assert take.text == "Hello [laughs] there."
        assert take.voice == "v2/en_speaker_0"
        assert take.seed == 1234
        assert take.random_weights is True
        assert take.options["max_duration_s"] == 0.3
        assert set(take.timings) == {"semantic", "coarse", "fine", "decode"}
        assert main.history.current_id == take.id
        # the app kept the take's samples as made, equal to what its WAV gives back
        kept = app._audio[("take", take.id)]
        assert np.array_equal(kept, take.load_audio()[0])
        row = [str(cell) for cell in main.history.get_row_at(0)]
        assert row[2] == "Hello [laughs] there." and row[3] == "v2/en_speaker_0"
        # its WAV is on disk and is what the waveform shows
        audio, rate = read_wav(take.wav_path)
        assert rate == 24_000 and len(audio) > 0
        assert main.waveform.blocks
        # the real tokenizer has replaced the estimate
        await wait_until(pilot, lambda: main.editor.exact, 30, "the real token count")

        # save as WAV: the dialog proposes a name in the output folder
        await pilot.press("ctrl+s")
        from .test_app_save import answer_save

        target = locations.default_output_dir() / f"take-{take.id}-hello-laughs-there.wav"
        dialog = await answer_save(pilot, app)
        assert dialog.path == str(target)
        assert app.screen is main
        saved, saved_rate = read_wav(target)
        assert saved_rate == rate and np.array_equal(saved, audio)
        assert has_message(app, f"Saved {target}")

        # save as a voice: it appears under My voices and can be used
        main.history.focus()
        await pilot.press("v")
        await answer_prompt(pilot, app, "narrator one")
        voice_file = locations.user_voices_dir() / "narrator one.npz"
        prompt = VoicePrompt.from_npz(voice_file)
        tokens = take.load_tokens()
        assert np.array_equal(prompt.fine, tokens["fine_prompt"])
        assert str(voice_file) in main.voices.visible_keys()
        assert main.voices.select(str(voice_file))
        take2 = await generate_take(pilot, app)
        assert take2.voice == str(voice_file)
        assert str(main.history.get_row_at(0)[3]) == "narrator one"

        # regenerate the first take: the same seed and settings give the same audio
        main.history.move_cursor(row=1)
        await pilot.pause()
        assert main.history.current_id == take.id
        main.history.focus()
        before = app.store.count()
        await pilot.press("g")
        await wait_until(pilot, lambda: app.store.count() > before and not app.queue.busy, 120,
                         "the regenerated take")
        again = app.store.list_takes()[0]
        assert (again.text, again.voice, again.seed) == (take.text, take.voice, take.seed)
        assert np.array_equal(again.load_tokens()["fine_prompt"], tokens["fine_prompt"])
        assert np.array_equal(read_wav(again.wav_path)[0], audio)

        # copy a take's text back into the editor
        main.editor.set_text("something else")
        main.history.focus()
        await pilot.press("e")
        await pilot.pause()
        assert main.editor.text == take.text

        # rename, delete, undo
        main.history.focus()
        await pilot.press("n")
        await answer_prompt(pilot, app, "keeper")
        assert app.store.get(again.id).name == "keeper"
        assert str(main.history.get_row_at(0)[2]) == "keeper"
        count = app.store.count()
        await pilot.press("d")
        await pilot.pause()
        assert app.store.count() == count - 1
        assert str(again.id) not in [str(r.key.value) for r in main.history.ordered_rows]
        assert has_message(app, "Press u in History")
        assert again.wav_path.exists()  # soft delete: nothing is lost
        await pilot.press("u")
        await pilot.pause()
        assert app.store.count() == count
        assert main.history.current_id == again.id


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "int8"])
async def test_precision_from_settings_reaches_the_engine(home, tiny_models, dtype):
    """A saved narrow precision loads narrow weights; the header says what ran, and
    a precision that is slow on this CPU says so once the models are loaded (with
    the compiled kernels none is)."""
    write_settings(dtype=dtype)
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.host.config.dtype == dtype
        assert app.main.header.device == f"auto · {dtype}"  # before loading: what was asked
        app.main.editor.area.focus()
        await type_text(pilot, "Half precision.")
        take = await generate_take(pilot, app)
        engine = app.host.engine
        assert engine is not None and engine.dtype == getattr(torch, dtype)
        assert app.main.header.device == f"cpu · {dtype}"  # after: what the engine runs
        advice = engine.precision_advice
        slow = dtype != "bfloat16" or not torch.cpu._is_avx512_bf16_supported()
        assert (advice is not None) == (slow and not kernels.available())
        if advice:
            assert has_message(app, f"Precision: {advice}")
        audio, rate = read_wav(take.wav_path)
        assert rate == 24_000 and len(audio) > 0 and np.isfinite(audio).all()


async def test_auto_precision_is_what_the_header_shows(home, tiny_models):
    """The default settings ask for auto; once loaded the header names what auto
    chose here (bfloat16 on the compiled kernels, else float32 without native bf16)."""
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.settings.dtype == "auto" and app.main.header.device == "auto"
        app.main.editor.area.focus()
        await type_text(pilot, "Auto precision.")
        take = await generate_take(pilot, app)
        engine = app.host.engine
        want = "bfloat16" if engine.uses_kernels or torch.cpu._is_avx512_bf16_supported() \
            else "float32"
        assert engine.dtype_name == want
        assert app.main.header.device == f"cpu · {want}"
        assert ("bfloat16 on cpu" in take.model_id) == (want == "bfloat16")
