"""The text Bark is given for a paragraph: the lexicon's names, numbers read aloud
in the voice's language. A script parse calls `Rewriter` on every paragraph
before cutting it into segments, so segment sizes and token counts are those of
the words Bark will actually read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bark_engine.voices.catalog import LANGUAGES, get_preset, is_preset_name

from .lexicon import EMPTY, Lexicon
from .numbers import read_numbers, supported

DEFAULT_LANG = "en"  # for a voice that has no language (My voices, the default voice)


def language_of(voice: str | None, override: str | None = None) -> str:
    """`override` (--lang) if given, else the preset's language, else English."""
    if override:
        return override
    if voice and is_preset_name(voice):
        try:
            return get_preset(voice).lang_code
        except Exception:  # a name that looks like a preset but is not one
            return DEFAULT_LANG
    return DEFAULT_LANG


@dataclass(frozen=True)
class Rewriter:
    """`normalize` off leaves the numbers as written; the lexicon still applies."""

    normalize: bool = True
    lang: str | None = None
    lexicon: Lexicon = EMPTY
    unread: set[str] = field(default_factory=set, compare=False)  # languages left as written

    def __call__(self, text: str, voice: str | None) -> str:
        lang = language_of(voice, self.lang)
        text = self.lexicon.apply(text, lang)
        if not self.normalize:
            return text
        if not supported(lang) and any(ch.isdigit() for ch in text):
            self.unread.add(lang)
            return text
        return read_numbers(text, lang)

    def notes(self) -> list[str]:
        """What the preview says about numbers left as written."""
        return [f"numbers in {LANGUAGES.get(lang, lang)} text are left as written (no "
                "reader for that language): write them as words" for lang in
                sorted(self.unread)]


def check_lang(code: str) -> str:
    """A --lang value: one of Bark's language codes."""
    from bark_engine.errors import BadInputError

    code = code.strip().lower()
    if code not in LANGUAGES:
        raise BadInputError(f"--lang {code!r} is not one of Bark's languages: "
                            + ", ".join(sorted(LANGUAGES)))
    return code
