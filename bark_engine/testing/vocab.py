"""A WordPiece vocabulary shaped like `bert-base-multilingual-cased`'s.

Bark feeds WordPiece ids + 10,048 to its text model, and its text pad id
(129,595) sits right after the 119,547 entries of the multilingual cased
vocabulary, so a stand-in must have exactly that many lines with the special
tokens at the same ids. The entries themselves are ours: every character the
13 Bark languages use, their `##` continuation forms, a few hundred whole
words, then `[unusedN]` filler. Any script in those languages tokenizes
without `[UNK]`; ids differ from the real vocabulary, which is fine for
random weights.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache

VOCAB_SIZE = 119_547  # lines in bert-base-multilingual-cased's vocab.txt
UNK_ID, CLS_ID, SEP_ID, MASK_ID = 100, 101, 102, 103

# Inclusive code point ranges of single characters, by script.
_CHAR_RANGES: tuple[tuple[int, int], ...] = (
    (0x0021, 0x007E),  # ASCII printable, no space
    (0x00A1, 0x00FF),  # Latin-1: ¡ ¿ « » ä ö ü ß é ñ ç ...
    (0x0100, 0x017F),  # Latin Extended-A: Polish, Czech, Turkish letters
    (0x0218, 0x021B),  # Romanian ș ț
    (0x0370, 0x03FF),  # Greek
    (0x0400, 0x04FF),  # Cyrillic (Russian)
    (0x0900, 0x097F),  # Devanagari (Hindi)
    (0x2010, 0x2027),  # dashes, quotes, … •
    (0x2030, 0x205E),  # ‰ ‹ › ‼ ⁇ ...
    (0x20A0, 0x20BF),  # currency signs (€ ₹ ...)
    (0x2122, 0x2122),  # ™
    (0x2190, 0x2199),  # arrows
    (0x2669, 0x266F),  # ♩ ♪ ♫ ♬ ♭ ♮ ♯ (Bark's music marks)
    (0x3000, 0x303F),  # CJK punctuation: 、 。 「 」 〜
    (0x3041, 0x309F),  # hiragana
    (0x30A0, 0x30FF),  # katakana (incl. ー)
    (0x4E00, 0x9FFF),  # CJK unified ideographs (Chinese, Japanese kanji)
    (0xAC00, 0xD7A3),  # Hangul syllables (Korean)
    (0xFF01, 0xFF5E),  # full-width forms: ！ ？ ， （ ）
)

# Whole words (English, German, French, Spanish ...), in no particular order.
_WORDS_TEXT = """
hello hi hey my name is suno and uh um i like pizza but also have other interests such
as playing tic tac toe the a an of to in it that this you he she we they was were be been
are am not no yes what how why when where who which there here with for on at by from up
down out about into over after before again just only very so then than too can could will
would should must may might do does did done go goes went gone make made say said get got
know think see look want give use find tell ask work seem feel try leave call good new first
last long great little own old right big high small large next early young important few
public bad same able day time year people way man woman child world life hand part place
case week company system program question government number night point home water room
mother father area money story fact month lot study book eye job word business issue side
kind head house service friend power hour game line end member law car city community
laughs laughter sighs music gasps clears throat singing sings man woman narrator speaker
voice sound hmm oh ah wow okay ok well really love happy sad today tomorrow yesterday morning
evening thank thanks please sorry welcome goodbye bye world test testing one two three four
five six seven eight nine ten hundred thousand
hallo ich bin und der die das ein eine nicht mit ist sie er es wir ihr mein dein sein haben
habe hat war waren werden wird wurde auch auf aus bei nach von vor zu zum zur über unter
heute morgen abend guten tag danke bitte ja nein gut sehr schön musik lacht seufzt
bonjour je suis et le la les un une des du de pas avec est elle il nous vous ils mon ton son
avoir ai été être aussi sur dans pour par merci oui non bien très musique rire soupir
hola yo soy el los las una es con por para gracias sí muy bueno ciao sono grazie olá sou obrigado
"""

# Word-final pieces, so common English/German/French endings tokenize in one step.
_SUFFIXES_TEXT = (
    "s es ed ing er ers est ly ion ions ment ness able ible al ful less ous ive ity "
    "en ern ung ungen heit keit lich isch te ten t e n"
)


def _chars() -> Iterator[str]:
    """Every printable single character of the ranges above."""
    for lo, hi in _CHAR_RANGES:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if unicodedata.category(ch) in {"Cn", "Cc", "Cf", "Co", "Cs", "Zs"}:
                continue  # unassigned, control, format, private, surrogate, space
            yield ch


def _is_cjk_ideograph(ch: str) -> bool:
    """BERT splits these into one-character words, so they never need `##` forms."""
    return 0x4E00 <= ord(ch) <= 0x9FFF


def _unique(tokens: Iterable[str]) -> Iterator[str]:
    seen: set[str] = set()
    for tok in tokens:
        if tok not in seen:
            seen.add(tok)
            yield tok


def _entries() -> Iterator[str]:
    """Special tokens, chars, `##` chars, words and suffixes, in vocabulary order."""
    yield "[PAD]"
    for i in range(1, UNK_ID):
        yield f"[unused{i}]"
    yield from ("[UNK]", "[CLS]", "[SEP]", "[MASK]")
    chars = list(_chars())
    yield from chars
    yield from (f"##{ch}" for ch in chars if not _is_cjk_ideograph(ch))
    yield from _WORDS_TEXT.split()
    yield from (f"##{s}" for s in _SUFFIXES_TEXT.split())


@lru_cache(maxsize=1)
def vocab_lines() -> tuple[str, ...]:
    """The 119,547 tokens, one per id; filler `[unusedN]` after the real entries."""
    tokens = list(_unique(_entries()))
    if len(tokens) > VOCAB_SIZE:
        raise AssertionError(f"vocabulary overflow: {len(tokens)} > {VOCAB_SIZE}")
    next_unused = UNK_ID  # [unused1..99] are taken before [UNK]
    taken = set(tokens)
    while len(tokens) < VOCAB_SIZE:
        name = f"[unused{next_unused}]"
        next_unused += 1
        if name not in taken:
            tokens.append(name)
    return tuple(tokens)


def vocab_text() -> str:
    """The file contents: one token per line, newline-terminated."""
    return "\n".join(vocab_lines()) + "\n"
