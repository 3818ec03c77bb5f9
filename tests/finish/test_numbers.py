"""Numbers read aloud: golden tables per language, cues untouched, idempotent, and the
segments' token counts taken on the rewritten text."""

from __future__ import annotations

import pytest

from bark_engine.errors import BadInputError
from bark_engine.scripts.parse import parse_script
from bark_engine.scripts.script import ScriptOptions
from bark_engine.scripts.sentences import estimate_tokens
from bark_tui.text.lexicon import parse_lexicon
from bark_tui.text.numbers import read_numbers
from bark_tui.text.rewrite import Rewriter, check_lang, language_of

GOLDEN = {
    "en": [
        ("In 1984 we met.", "In nineteen eighty-four we met."),
        ("It costs $12.50.", "It costs twelve dollars, fifty cents."),
        ("It costs $5 now.", "It costs five dollars now."),
        ("Up 15% today.", "Up fifteen percent today."),
        ("At 7:05 pm.", "At seven oh five p m."),
        ("At 10:00.", "At ten o'clock."),
        ("The 21st time.", "The twenty-first time."),
        ("1,234 people", "one thousand, two hundred and thirty-four people"),
        ("Run 5 km.", "Run five kilometers."),
        ("Run 1 km.", "Run one kilometer."),
        ("At -3 °C.", "At minus three degrees Celsius."),
        ("Pi is 3.14.", "Pi is three point one four."),
    ],
    "de": [
        ("Am 3. Mai 1984.", "Am dritten Mai neunzehnhundertvierundachtzig."),
        ("Es kostet 12,50 €.", "Es kostet zwölf Euro und fünfzig Cent."),
        ("15 % mehr", "fünfzehn Prozent mehr"),
        ("um 10:30", "um zehn Uhr dreißig"),
        ("1.234 Leute", "eintausendzweihundertvierunddreißig Leute"),
        ("5 km weit", "fünf Kilometer weit"),
        ("Platz 3.", "Platz drei."),
    ],
    "es": [
        ("El 2º día", "El segundo día"),
        ("un 15 % más", "un quince por ciento más"),
        ("a las 10:30", "a las diez y treinta"),
        ("1.234 personas", "mil doscientos treinta y cuatro personas"),
        ("12,50 €", "doce euros con cincuenta céntimos"),
    ],
    "fr": [
        ("Le 1er mai", "Le premier mai"),
        ("15 % de plus", "quinze pour cent de plus"),
        ("à 10:30", "à dix heures trente"),
        ("à 1:00", "à une heure"),
        ("1 234 personnes", "mille deux cent trente-quatre personnes"),
        ("la 3e place", "la troisième place"),
    ],
    "it": [
        ("Il 2º giorno", "Il secondo giorno"),
        ("il 15% in più", "il quindici per cento in più"),
        ("alle 10:30", "alle dieci e trenta"),
        ("5 km", "cinque chilometri"),
    ],
    "ru": [
        ("21 км", "двадцать один километр"),
        ("3 км", "три километра"),
        ("5 км", "пять километров"),
        ("15 %", "пятнадцать процентов"),
        ("5-й раз", "пятый раз"),
        ("2,5 %", "две целых пять десятых процента"),
    ],
    "pl": [
        ("15% więcej", "piętnaście procent więcej"),
        ("2 km", "dwa kilometry"),
        ("5 km", "pięć kilometrów"),
        ("o 10:30", "o dziesięć trzydzieści"),
    ],
    "pt": [
        ("No 2º dia", "No segundo dia"),
        ("15% mais", "quinze por cento mais"),
        ("às 10:30", "às dez e trinta"),
        ("1.234 pessoas", "mil duzentos e trinta e quatro pessoas"),
    ],
    "tr": [
        ("%15 daha", "yüzde onbeş daha"),
        ("3. gün", "üçüncü gün"),
        ("5 km", "beş kilometre"),
    ],
    "ja": [
        ("1984年に", "千九百八十四年に"),
        ("12.5%", "十二点五パーセント"),
        ("10:30に", "十時三十分に"),
        ("¥100", "百円"),
    ],
}


@pytest.mark.parametrize("lang,written,said",
                         [(lang, w, s) for lang, rows in GOLDEN.items() for w, s in rows])
def test_golden(lang, written, said):
    assert read_numbers(written, lang) == said
    assert read_numbers(said, lang) == said  # idempotent


def test_cues_pass_byte_for_byte():
    text = "[laughs] 3 [MAN 2] cats ♪ 4 ♪ [pause 1.5s]"
    out = read_numbers(text, "en")
    assert out == "[laughs] three [MAN 2] cats ♪ four ♪ [pause 1.5s]"


def test_languages_without_a_reader_are_left_as_written():
    r = Rewriter()
    assert r("我有15个", "v2/zh_speaker_1") == "我有15个"
    assert "Chinese" in r.notes()[0]
    assert read_numbers("12 बजे", "hi") == "12 बजे"


def test_language_comes_from_the_voice_or_lang():
    assert language_of("v2/de_speaker_3") == "de"
    assert language_of("my-narrator") == "en"
    assert language_of("v2/de_speaker_3", "fr") == "fr"
    assert check_lang("DE") == "de"
    with pytest.raises(BadInputError, match="not one of Bark's languages"):
        check_lang("xx")


def test_script_segments_are_cut_and_counted_on_the_words_bark_reads():
    script_text = "Ann: I owe you $1,234,567.89 [laughs].\n[v2/de_speaker_1]\nDas kostet 5 €."
    seen: list[str] = []

    def count(text: str) -> int:
        seen.append(text)
        return estimate_tokens(text)

    script = parse_script(script_text, ScriptOptions(rewrite=Rewriter()), count_tokens=count)
    texts = [s.text for s in script.segments]
    assert texts[0].startswith("I owe you one million") and texts[0].endswith("[laughs].")
    assert texts[1] == "Das kostet fünf Euro."
    assert script.segments[0].speaker == "Ann"
    assert not any(ch.isdigit() for t in seen for ch in t)  # counted after rewriting
    off = parse_script(script_text, ScriptOptions(rewrite=Rewriter(normalize=False)))
    assert "$1,234,567.89" in off.segments[0].text


def test_lexicon_words_and_expressions():
    lex = parse_lexicon('[all]\n"SQL" = "sequel"\n[en]\n"Nguyen" = "Win"\n'
                        '[en.regex]\n\'\\bDr\\.\' = "Doctor"\n[de]\n"Nguyen" = "Nuyen"\n')
    r = Rewriter(lexicon=lex)
    assert r("Dr. Nguyen knows SQL [SQL], not SQLite.", None) == \
        "Doctor Win knows sequel [SQL], not SQLite."
    assert r("Nguyen hat 2 Hunde.", "v2/de_speaker_0") == "Nuyen hat zwei Hunde."


@pytest.mark.parametrize("text,line", [
    ('[en]\n"a" = \n', "line 2"),
    ('[en]\n"a" = 3\n', "must map to a string"),
    ('[en.regex]\n"(" = "x"\n', "not a valid regular expression"),
    ('en = "x"\n', "must be a table"),
])
def test_lexicon_errors_say_where(text, line):
    with pytest.raises(BadInputError, match=line.replace("(", r"\(")):
        parse_lexicon(text, "lex.toml")
