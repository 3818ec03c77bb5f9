"""Sentence splitting, segment packing, pauses, dialogue and voice switches in scripts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bark_engine.scripts.parse import parse_script, split_sentences
from bark_engine.scripts.script import Script, ScriptOptions
from bark_engine.scripts.sentences import estimate_seconds, estimate_tokens, is_cjk


def texts(script: Script) -> list[str]:
    return [s.text for s in script.segments]


def squash(text: str) -> str:
    return "".join(text.split())


# --- sentences in several languages -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Hello, my name is Suno. And, uh — and I like pizza. [laughs] But I also have "
            "other interests such as playing tic tac toe.",
            [
                "Hello, my name is Suno.",
                "And, uh — and I like pizza.",
                "[laughs] But I also have other interests such as playing tic tac toe.",
            ],
        ),
        (
            "Mr. Smith paid 3.14 dollars, e.g. for apples... and pears! Really?! J. R. Smith agreed.",
            [
                "Mr. Smith paid 3.14 dollars, e.g. for apples... and pears!",
                "Really?!",
                "J. R. Smith agreed.",
            ],
        ),
        (
            'Wait... What? "No!" she said. Then she left.',
            ["Wait...", "What?", '"No!" she said.', "Then she left."],
        ),
        (
            "Guten Tag! Wie geht es Ihnen? Mir geht es z.B. gut. Dr. Müller kommt um 10.30 Uhr.",
            [
                "Guten Tag!",
                "Wie geht es Ihnen?",
                "Mir geht es z.B. gut.",
                "Dr. Müller kommt um 10.30 Uhr.",
            ],
        ),
        (
            "Bonjour ! Comment allez-vous ? Très bien, merci. M. Dupont arrive.",
            ["Bonjour !", "Comment allez-vous ?", "Très bien, merci.", "M. Dupont arrive."],
        ),
        (
            "今日は良い天気です。散歩に行きましょう！本当？はい。",
            ["今日は良い天気です。", "散歩に行きましょう！", "本当？", "はい。"],
        ),
        ("「こんにちは。」と彼は言った。", ["「こんにちは。」", "と彼は言った。"]),
        (
            "我喜欢吃披萨。你呢？我也是！OK.好的",
            ["我喜欢吃披萨。", "你呢？", "我也是！", "OK.", "好的"],
        ),
        (
            "안녕하세요. 저는 수노입니다! 만나서 반갑습니다?",
            ["안녕하세요.", "저는 수노입니다!", "만나서 반갑습니다?"],
        ),
        ("मेरा नाम सुनो है। मुझे पिज़्ज़ा पसंद है॥ और तुम?", ["मेरा नाम सुनो है।", "मुझे पिज़्ज़ा पसंद है॥", "और तुम?"]),
        ("هل أنت بخير؟ نعم", ["هل أنت بخير؟", "نعم"]),
        ("", []),
        ("   \n  ", []),
        ("no ending punctuation", ["no ending punctuation"]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_sung_lines_and_cues_stay_whole() -> None:
    text = "♪ In the jungle. The mighty jungle! ♪ Then quiet. [clears throat] OK. ♪ la. ♪ End."
    assert split_sentences(text) == [
        "♪ In the jungle. The mighty jungle! ♪",
        "Then quiet.",
        "[clears throat] OK.",
        "♪ la. ♪",
        "End.",
    ]


def test_estimates() -> None:
    assert estimate_seconds("a" * 145) == pytest.approx(10.0)
    assert estimate_seconds("我" * 60) == pytest.approx(10.0)
    assert estimate_seconds("a   \n b") == pytest.approx(3 / 14.5)
    assert estimate_tokens("Hello, world") == 3 + 1 + 3  # hello→3, ","→1, world→3
    assert estimate_tokens("我喜欢") == 3
    assert is_cjk("한") and is_cjk("カ") and not is_cjk("a") and not is_cjk("。")


# --- packing into segments --------------------------------------------------------------


def test_short_sentences_pack_into_one_segment() -> None:
    script = parse_script("Hello there. How are you? I am fine.")
    assert texts(script) == ["Hello there. How are you? I am fine."]
    seg = script.segments[0]
    assert (seg.index, seg.voice, seg.speaker, seg.pause_before_s, seg.line_no) == (
        0,
        None,
        None,
        0.0,
        1,
    )
    assert script.warnings == () and script.speakers_found == ()


def test_budget_splits_at_sentences_then_pauses() -> None:
    sentence = "This sentence takes about three seconds to say aloud."  # 53 chars ≈ 3.7 s
    script = parse_script(" ".join([sentence] * 8))
    assert all(t.count(sentence) == len(t) // len(sentence) for t in texts(script))
    assert [len(t.split(". ")) for t in texts(script)] == [3, 3, 2]
    assert [s.pause_before_s for s in script.segments] == [0.0, 0.25, 0.25]
    assert all(estimate_seconds(t) <= 13.0 for t in texts(script))


def test_long_sentence_splits_at_commas_first() -> None:
    clause = "and then we walked along the river for a while"
    text = ", ".join([clause] * 8) + "."
    script = parse_script(text, ScriptOptions(budget_s=8.0))
    assert len(script.segments) > 1
    assert all(t.endswith((",", ".")) for t in texts(script))
    assert squash("".join(texts(script))) == squash(text)


def test_long_unpunctuated_text_splits_at_words_within_both_limits() -> None:
    words = [f"word{i}" for i in range(400)]
    text = " ".join(words)

    def count(piece: str) -> int:  # a stand-in tokenizer: two tokens per word
        return 2 * len(piece.split())

    options = ScriptOptions(max_tokens=40)  # 13 s would allow ~23 words
    script = parse_script(text, options, count_tokens=count)
    assert script.warnings == ()
    for seg in script.segments:
        assert estimate_seconds(seg.text) <= 13.0 and count(seg.text) <= 40
        assert all(w in words for w in seg.text.split())  # whole words only
    assert " ".join(texts(script)) == text
    assert max(count(t) for t in texts(script)) == 40  # the token limit is what binds


def test_long_cjk_splits_between_characters() -> None:
    text = "我喜欢吃披萨和面条" * 30  # 270 characters, no punctuation
    script = parse_script(text, ScriptOptions(budget_s=5.0))
    assert "".join(texts(script)) == text
    assert all(estimate_seconds(t) <= 5.0 for t in texts(script))
    assert len(script.segments) == 9  # 30 characters (5 s at 6 chars/s) each


def test_korean_and_japanese_long_text() -> None:
    korean = "저는 오늘 아침에 공원에서 산책을 했습니다 " * 12
    script = parse_script(korean, ScriptOptions(budget_s=4.0))
    assert squash("".join(texts(script))) == squash(korean)
    assert all(estimate_seconds(t) <= 4.0 for t in texts(script))
    assert all(t.split()[0] in korean.split() for t in texts(script))  # cut at spaces
    japanese = "吾輩は猫である、名前はまだ無い、どこで生れたかとんと見当がつかぬ。" * 4
    script = parse_script(japanese, ScriptOptions(budget_s=3.0))
    assert "".join(texts(script)) == japanese
    assert all(t.endswith(("、", "。")) for t in texts(script))


def test_multilingual_script_cuts_only_between_words() -> None:
    hindi = "मेरा नाम सुनो है और मुझे पिज़्ज़ा बहुत पसंद है लेकिन मुझे संगीत भी अच्छा लगता है " * 3
    german = "Ich heiße Suno, und ich mag Pizza, aber ich spiele auch gern Tic Tac Toe. " * 3
    french = "Je m'appelle Suno, et j'aime la pizza, mais je joue aussi au morpion. " * 3
    text = f"{hindi}\n\n{german}\n\n{french}"
    script = parse_script(text, ScriptOptions(budget_s=4.0))
    all_words = set(text.split())
    for seg in script.segments:
        assert estimate_seconds(seg.text) <= 4.0
        assert set(seg.text.split()) <= all_words
    lines = sorted({s.line_no for s in script.segments})
    assert lines == [1, 3, 5]
    paragraph_starts = [s for s in script.segments if s.pause_before_s == 0.75]
    assert [s.line_no for s in paragraph_starts] == [3, 5]
    assert squash("".join(texts(script))) == squash(text)


def test_unsplittable_word_is_kept_whole_and_warned() -> None:
    url = "https://example.com/" + "x" * 300
    script = parse_script(f"Visit {url} today.", ScriptOptions(budget_s=5.0))
    assert url in texts(script)
    assert len(script.warnings) == 1 and "over the segment budget" in script.warnings[0]


def test_sung_line_kept_together_when_it_fits() -> None:
    song = "♪ Twinkle twinkle little star. How I wonder what you are. ♪"
    script = parse_script(f"Sing with me. {song} Thank you.", ScriptOptions(budget_s=5.0))
    assert any(song in t for t in texts(script))
    assert "Sing with me." not in [t for t in texts(script) if song in t]


# --- blank lines, pauses, cues ------------------------------------------------------------


def test_empty_scripts_have_no_segments() -> None:
    for text in ("", "   ", "\n\n  \n", "[pause]", "[pause 2s]\n\n"):
        script = parse_script(text)
        assert script.segments == ()


def test_blank_lines_and_pause_markers() -> None:
    text = (
        "First paragraph here.\n"
        "Still the first paragraph.\n"
        "\n\n"
        "Second paragraph. [pause] After a default pause.\n"
        "[pause 1.5s]\n"
        "Then one and a half. [PAUSE 2] [pause .5 seconds] Then two and a half.\n"
        "End [pause 0] now."
    )
    script = parse_script(text)
    assert texts(script) == [
        "First paragraph here. Still the first paragraph.",
        "Second paragraph.",
        "After a default pause.",
        "Then one and a half.",
        "Then two and a half. End",  # a line break inside a paragraph is a space
        "now.",
    ]
    assert [s.pause_before_s for s in script.segments] == [0.0, 0.75, 1.0, 1.5, 2.5, 0.0]
    assert [s.line_no for s in script.segments] == [1, 5, 5, 7, 7, 8]
    assert script.warnings == ()


def test_edge_pauses_and_bad_markers_warn() -> None:
    script = parse_script("[pause 3]\nHello.\n[pause abc]\nBye. [pause 90s]\nLast.[pause]")
    assert texts(script) == ["Hello. [pause abc] Bye.", "Last."]
    assert script.segments[0].pause_before_s == 0.0
    assert script.segments[1].pause_before_s == 60.0
    joined = " | ".join(script.warnings)
    for part in (
        "before the first line",
        "after the last line",
        "cut to 60 s",
        "not a pause marker",
    ):
        assert part in joined


def test_cues_pass_through_untouched() -> None:
    text = (
        "[laughs]\n"
        "WOW, that was — uh — GREAT… [laughter] [sighs] [gasps] [clears throat]\n"
        "[MAN] Hello. [WOMAN] Hi. [music] ♪ la la la ♪"
    )
    script = parse_script(text)
    assert texts(script) == [
        "[laughs] WOW, that was — uh — GREAT… [laughter] [sighs] [gasps] [clears throat] "
        "[MAN] Hello. [WOMAN] Hi. [music] ♪ la la la ♪"
    ]
    assert script.warnings == ()
    assert all(s.voice is None for s in script.segments)


# --- dialogue and voices ------------------------------------------------------------------


def test_dialogue_with_speaker_map() -> None:
    text = (
        "Alice: Hi Bob! How are you?\nBOB: Fine, thanks.\nI had pizza.\nalice: Nice.\nCarol: Hello?"
    )
    options = ScriptOptions(speakers={"alice": "v2/en_speaker_9", "Bob": "v2/en_speaker_6"})
    script = parse_script(text, options)
    rows = [(s.speaker, s.voice, s.text, s.pause_before_s, s.line_no) for s in script.segments]
    assert rows == [
        ("Alice", "v2/en_speaker_9", "Hi Bob! How are you?", 0.0, 1),
        ("BOB", "v2/en_speaker_6", "Fine, thanks. I had pizza.", 0.5, 2),
        ("Alice", "v2/en_speaker_9", "Nice.", 0.5, 4),
        ("Carol", None, "Hello?", 0.5, 5),
    ]
    assert script.speakers_found == ("Alice", "BOB", "Carol")
    assert script.voices == ("v2/en_speaker_9", "v2/en_speaker_6", None)
    assert any("Carol" in w for w in script.warnings)


def test_dialogue_default_voice_and_cjk_names() -> None:
    text = "太郎：こんにちは。\n花子： はい、元気です。"
    script = parse_script(text, ScriptOptions(default_voice="v2/ja_speaker_1"))
    assert [(s.speaker, s.voice, s.text) for s in script.segments] == [
        ("太郎", "v2/ja_speaker_1", "こんにちは。"),
        ("花子", "v2/ja_speaker_1", "はい、元気です。"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "http://example.com is where it lives.",
        "We meet at 10:30 tomorrow.",
        "The rule is simple: be kind.",
        "[laughs]: that was funny.",
        "Ratio 3:2 holds.",
        "Chapter 1: The Beginning",
        "Note: bring water.",
        "Warning: hot surface.",
        "so here is the thing: it works.",
    ],
)
def test_not_speaker_labels(line: str) -> None:
    script = parse_script(line)
    assert script.speakers_found == ()
    assert texts(script) == [line]


def test_a_mapped_label_is_a_speaker_and_a_skipped_one_is_said():
    script = parse_script("Note: bring water.\nChapter 1: Start.",
                          ScriptOptions(speakers={"note": "v2/en_speaker_1"}))
    assert script.speakers_found == ("Note",)
    assert any("“Chapter 1:” read as text" in w for w in script.warnings)


def test_voice_switch_lines() -> None:
    text = (
        "Intro in the default voice.\n"
        "[V2/DE_Speaker_3]\n"
        "Hallo zusammen.\n"
        "[my narrator]\n"
        "Mine now.\n"
        "[announcer]\n"
        "Ann: Breaking news.\n"
        "[v2/en_speaker_1]\n"
        "Ben: Thanks.\n"
        "Ann: Back to you."
    )
    script = parse_script(text, ScriptOptions(known_voices=frozenset({"My Narrator"})))
    assert [(s.voice, s.speaker, s.text) for s in script.segments] == [
        (None, None, "Intro in the default voice."),
        ("v2/de_speaker_3", None, "Hallo zusammen."),
        ("my narrator", None, "Mine now."),
        ("announcer", "Ann", "Breaking news."),
        ("v2/en_speaker_1", "Ben", "Thanks."),
        ("announcer", "Ann", "Back to you."),
    ]
    assert [s.pause_before_s for s in script.segments] == [0.0, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert script.warnings == ()


def test_odd_bracket_lines() -> None:
    script = parse_script(
        "[some voice]\nHi.\n[../../etc/passwd]\nStill.", ScriptOptions(known_voices=frozenset())
    )
    assert [(s.voice, s.text) for s in script.segments] == [
        ("some voice", "Hi. [../../etc/passwd] Still."),
    ]
    assert len(script.warnings) == 2
    assert "neither a preset nor one of My voices" in script.warnings[0]
    assert "not a known cue or voice name" in script.warnings[1]


# --- properties ---------------------------------------------------------------------------

WORDS = st.sampled_from(
    [
        "hello",
        "World",
        "3.14",
        "Mr.",
        "e.g.",
        "…",
        "—",
        "WOW",
        "[laughs]",
        "[clears throat]",
        "♪",
        "我喜欢",
        "こんにちは",
        "안녕",
        "नमस्ते",
        "Straße",
        "don't",
        "x" * 40,
    ]
)
ENDS = st.sampled_from(["", ".", "!", "?", "...", "。", "！", "।", ",", ";"])


@st.composite
def sentence(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORDS, min_size=1, max_size=25))
    return " ".join(words) + draw(ENDS)


@st.composite
def script_lines(draw: st.DrawFn) -> tuple[str, str]:
    """A script and its speakable text (no labels, switch lines or pause markers)."""
    lines, spoken = [], []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["text", "text", "label", "blank", "switch", "pause"]))
        if kind == "blank":
            lines.append("")
        elif kind == "switch":
            lines.append(draw(st.sampled_from(["[v2/en_speaker_6]", "[announcer]", "[my voice]"])))
        elif kind == "pause":
            lines.append(draw(st.sampled_from(["[pause]", "[pause 2s]", "[pause 0.3]"])))
        else:
            parts = draw(st.lists(sentence(), min_size=1, max_size=4))
            spoken += parts
            label = (
                draw(st.sampled_from(["Ann: ", "Bob Smith: ", "Z: "])) if kind == "label" else ""
            )
            sep = draw(st.sampled_from([" ", " [pause] ", "  "]))
            lines.append(label + sep.join(parts))
    return "\n".join(lines), " ".join(spoken)


@settings(max_examples=120, deadline=None)
@given(script_lines(), st.floats(1.0, 13.0), st.integers(8, 256))
def test_segments_give_back_the_speakable_text(case, budget: float, max_tokens: int) -> None:
    text, spoken = case
    options = ScriptOptions(budget_s=budget, max_tokens=max_tokens)
    script = parse_script(text, options)
    assert squash("".join(texts(script))) == squash(spoken)
    over = [
        t for t in texts(script) if estimate_seconds(t) > budget or estimate_tokens(t) > max_tokens
    ]
    assert not over or any("over the segment budget" in w for w in script.warnings)
    for seg in script.segments:
        assert seg.text == seg.text.strip() and seg.text
        assert 1 <= seg.line_no <= max(1, len(text.splitlines()))
        assert (seg.pause_before_s == 0.0) == (seg.index == 0) or seg.pause_before_s >= 0


PLAIN = st.text(
    alphabet=st.characters(blacklist_characters="[]:：", blacklist_categories=("Cs",)),
    max_size=600,
)


@settings(max_examples=150, deadline=None)
@given(PLAIN, st.floats(0.5, 13.0))
def test_any_plain_text_survives_segmenting(text: str, budget: float) -> None:
    script = parse_script(text, ScriptOptions(budget_s=budget))
    assert squash("".join(texts(script))) == squash(text)
    assert [s.index for s in script.segments] == list(range(len(script.segments)))
