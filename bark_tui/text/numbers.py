"""Digits and symbols as words, so Bark says them: "15%" -> "fifteen percent".

Handles, in this order of precedence: currency (`$12.50`, `12,50 €`), times
(`10:30`, `7:05 pm`), percentages, simple units (km, kg, cm, m, km/h, °C),
ordinals (`21st`, `3e`, `2º`, `5-й`, German/Polish/Turkish `3.` before a month
or a lowercase word), years (1000-2099 read as years where the language says
them differently), decimals and grouped numbers with the language's own
separators, and plain integers. Words come from num2words; a language it does
not cover (Hindi, Chinese) is left as written (`supported` says so, and the
preview notes it). Bracketed cues are never touched, and the result has no
digits left that a rule knows, so running it twice changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

_CUE_RE = re.compile(r"(\[[^\[\]]*\])")

Forms = tuple[str, ...]  # (one, other) or, for Slavic plurals, (one, few, many)


@dataclass(frozen=True)
class Rules:
    """How one language writes and says numbers."""

    decimal: str  # the decimal separator
    groups: str  # characters that separate thousands
    percent: Forms
    units: dict[str, Forms]
    time: str  # "{h} {m}" style; {m} is dropped with its joiner for :00
    time_whole: str  # the hour alone (":00")
    ordinal_re: str | None = None  # a number with the language's ordinal mark
    ordinal_before: str | None = None  # "N." as ordinal when followed by this
    years: bool = False  # num2words' "year" reading differs from the cardinal
    percent_before: bool = False  # Turkish: "yüzde on"
    currency: dict[str, Forms] = field(default_factory=dict)  # code -> words (fallback)
    space: str = " "  # between a number and its word (none in Japanese)


_MONTHS_DE = ("Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|"
              "Dezember|Jänner")
_MONTHS_PL = ("stycznia|lutego|marca|kwietnia|maja|czerwca|lipca|sierpnia|września|"
              "października|listopada|grudnia")
_MONTHS_TR = "Ocak|Şubat|Mart|Nisan|Mayıs|Haziran|Temmuz|Ağustos|Eylül|Ekim|Kasım|Aralık"

RULES: dict[str, Rules] = {
    "en": Rules(".", ",", ("percent",), {
        "km/h": ("kilometer per hour", "kilometers per hour"), "km": ("kilometer", "kilometers"),
        "kg": ("kilogram", "kilograms"), "cm": ("centimeter", "centimeters"),
        "m": ("meter", "meters"), "°C": ("degree Celsius", "degrees Celsius"),
        "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "mph": ("mile per hour",
                                                                   "miles per hour")},
        "{h} {m}", "{h} o'clock", ordinal_re=r"(?:st|nd|rd|th)\b", years=True,
        currency={"USD": ("dollar", "dollars"), "EUR": ("euro", "euros"),
                  "GBP": ("pound", "pounds"), "JPY": ("yen", "yen")}),
    "de": Rules(",", ".", ("Prozent",), {
        "km/h": ("Kilometer pro Stunde",), "km": ("Kilometer",), "kg": ("Kilogramm",),
        "cm": ("Zentimeter",), "m": ("Meter",), "°C": ("Grad Celsius",)},
        "{h} Uhr {m}", "{h} Uhr", ordinal_before=rf"\s+(?:{_MONTHS_DE}|[a-zäöü])",
        years=True, currency={"USD": ("Dollar",), "EUR": ("Euro",), "GBP": ("Pfund",),
                              "JPY": ("Yen",)}),
    "es": Rules(",", ".", ("por ciento",), {
        "km/h": ("kilómetro por hora", "kilómetros por hora"), "km": ("kilómetro", "kilómetros"),
        "kg": ("kilogramo", "kilogramos"), "cm": ("centímetro", "centímetros"),
        "m": ("metro", "metros"), "°C": ("grado Celsius", "grados Celsius")},
        "{h} y {m}", "{h} en punto", ordinal_re=r"\.?[ºª°](?!\s?[CF]\b)",
        currency={"USD": ("dólar", "dólares"), "EUR": ("euro", "euros"),
                  "GBP": ("libra", "libras"), "JPY": ("yen", "yenes")}),
    "fr": Rules(",", " \u00a0\u202f", ("pour cent",), {
        "km/h": ("kilomètre par heure", "kilomètres par heure"),
        "km": ("kilomètre", "kilomètres"), "kg": ("kilogramme", "kilogrammes"),
        "cm": ("centimètre", "centimètres"), "m": ("mètre", "mètres"),
        "°C": ("degré Celsius", "degrés Celsius")},
        "{h} heures {m}", "{h} heures", ordinal_re=r"(?:er|re|ème|eme|e)\b",
        currency={"USD": ("dollar", "dollars"), "EUR": ("euro", "euros"),
                  "GBP": ("livre", "livres"), "JPY": ("yen", "yens")}),
    "it": Rules(",", ".", ("per cento",), {
        "km/h": ("chilometro orario", "chilometri orari"), "km": ("chilometro", "chilometri"),
        "kg": ("chilogrammo", "chilogrammi"), "cm": ("centimetro", "centimetri"),
        "m": ("metro", "metri"), "°C": ("grado Celsius", "gradi Celsius")},
        "{h} e {m}", "{h} in punto", ordinal_re=r"\.?[ºª°](?!\s?[CF]\b)",
        currency={"USD": ("dollaro", "dollari"), "EUR": ("euro", "euro"),
                  "GBP": ("sterlina", "sterline"), "JPY": ("yen", "yen")}),
    "pt": Rules(",", ".", ("por cento",), {
        "km/h": ("quilômetro por hora", "quilômetros por hora"),
        "km": ("quilômetro", "quilômetros"), "kg": ("quilograma", "quilogramas"),
        "cm": ("centímetro", "centímetros"), "m": ("metro", "metros"),
        "°C": ("grau Celsius", "graus Celsius")},
        "{h} e {m}", "{h} em ponto", ordinal_re=r"\.?[ºª°](?!\s?[CF]\b)",
        currency={"USD": ("dólar", "dólares"), "EUR": ("euro", "euros"),
                  "GBP": ("libra", "libras"), "JPY": ("iene", "ienes")}),
    "ru": Rules(",", " \u00a0\u202f", ("процент", "процента", "процентов"), {
        "км/ч": ("километр в час", "километра в час", "километров в час"),
        "km/h": ("километр в час", "километра в час", "километров в час"),
        "км": ("километр", "километра", "километров"),
        "km": ("километр", "километра", "километров"),
        "кг": ("килограмм", "килограмма", "килограммов"),
        "kg": ("килограмм", "килограмма", "килограммов"),
        "см": ("сантиметр", "сантиметра", "сантиметров"),
        "м": ("метр", "метра", "метров"),
        "°C": ("градус Цельсия", "градуса Цельсия", "градусов Цельсия")},
        "{h} {m}", "{h} ровно", ordinal_re=r"-(?:й|я|е|го|му|м|х)\b",
        currency={"USD": ("доллар", "доллара", "долларов"), "EUR": ("евро", "евро", "евро"),
                  "RUB": ("рубль", "рубля", "рублей"), "GBP": ("фунт", "фунта", "фунтов"),
                  "JPY": ("иена", "иены", "иен")}),
    "pl": Rules(",", " \u00a0\u202f.", ("procent", "procent", "procent"), {
        "km/h": ("kilometr na godzinę", "kilometry na godzinę", "kilometrów na godzinę"),
        "km": ("kilometr", "kilometry", "kilometrów"), "kg": ("kilogram", "kilogramy",
                                                               "kilogramów"),
        "cm": ("centymetr", "centymetry", "centymetrów"), "m": ("metr", "metry", "metrów"),
        "°C": ("stopień Celsjusza", "stopnie Celsjusza", "stopni Celsjusza")},
        "{h} {m}", "{h}", ordinal_before=rf"\s+(?:{_MONTHS_PL})\b",
        currency={"USD": ("dolar", "dolary", "dolarów"), "EUR": ("euro", "euro", "euro"),
                  "PLN": ("złoty", "złote", "złotych"), "GBP": ("funt", "funty", "funtów"),
                  "JPY": ("jen", "jeny", "jenów")}),
    "tr": Rules(",", ".", ("yüzde",), {
        "km/h": ("kilometre bölü saat",), "km": ("kilometre",), "kg": ("kilogram",),
        "cm": ("santimetre",), "m": ("metre",), "°C": ("derece",)},
        "{h} {m}", "{h}", ordinal_before=rf"\s+(?:{_MONTHS_TR}|[a-zçğıöşü])",
        percent_before=True,
        currency={"USD": ("dolar",), "EUR": ("avro",), "TRY": ("lira",), "GBP": ("sterlin",),
                  "JPY": ("yen",)}),
    "ja": Rules(".", ",", ("パーセント",), {
        "km/h": ("キロメートル毎時",), "km": ("キロメートル",), "kg": ("キログラム",),
        "cm": ("センチメートル",), "m": ("メートル",), "°C": ("度",)},
        "{h}時{m}分", "{h}時",
        currency={"USD": ("ドル",), "EUR": ("ユーロ",), "JPY": ("円",), "GBP": ("ポンド",)},
        space=""),
    "ko": Rules(".", ",", ("퍼센트",), {
        "km/h": ("킬로미터毎時",), "km": ("킬로미터",), "kg": ("킬로그램",),
        "cm": ("센티미터",), "m": ("미터",), "°C": ("도",)},
        "{h}시 {m}분", "{h}시",
        currency={"USD": ("달러",), "EUR": ("유로",), "JPY": ("엔",), "KRW": ("원",)}),
}
RULES["ko"].units["km/h"] = ("시속 킬로미터",)

_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₽": "RUB",
            "₺": "TRY", "zł": "PLN", "₩": "KRW"}
_CODES = ("USD", "EUR", "GBP", "JPY", "RUB", "TRY", "PLN", "KRW")


def supported(lang: str) -> bool:
    return lang in RULES


def _plural(forms: Forms, value: Decimal) -> str:
    """The form of a unit word for `value` (Slavic one/few/many, else one/other)."""
    if len(forms) == 1:
        return forms[0]
    whole = value == value.to_integral_value()
    n = int(abs(value)) if whole else None
    if len(forms) == 2:
        return forms[0] if n == 1 else forms[1]
    if n is None:
        return forms[1]  # fractions take the genitive singular ("2,5 процента")
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


class _Reader:
    """One language's rules compiled into a single pattern."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        r = self.rules = RULES[lang]
        groups = "[" + re.escape(r.groups) + "]"
        dec = re.escape(r.decimal)
        # Not inside a word of Latin or Cyrillic letters ("MP3"); CJK text writes digits
        # against its characters ("1984年"), so those do not block.
        edge = r"(?<![A-Za-z\u00c0-\u024f\u0400-\u04ff\d.,])"
        minus = r"(?:(?<![\w-])-)?"
        num = rf"{minus}{edge}\d{{1,3}}(?:{groups}\d{{3}})+(?:{dec}\d+)?(?![\d])|" \
              rf"{minus}{edge}\d+(?:{dec}\d+)?(?![\d])"
        num_lax = rf"\d{{1,3}}(?:{groups}\d{{3}})+(?:{dec}\d+)?(?!\d)|\d+(?:{dec}\d+)?(?!\d)"
        syms = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
        codes = "|".join(_CODES)
        units = "|".join(re.escape(u) for u in sorted(r.units, key=len, reverse=True))
        parts = [
            rf"(?P<cur_sym>{syms})\s?(?P<cur_a>{num_lax})",
            rf"(?P<cur_b>{num})\s?(?P<cur_sym2>{syms}|{codes})(?!\w)",
            r"(?<![\d:])(?P<hh>[01]?\d|2[0-3]):(?P<mm>[0-5]\d)(?![\d:])"
            # "p.m." loses its last dot only mid-sentence: at the end it ends the sentence
            r"(?:\s?(?P<ampm>[ap])\.?\s?m(?!\w)(?:\.(?=\s+[a-z]))?)?",
            rf"(?P<pct>{num})\s?%",
            rf"%\s?(?P<pct2>{num_lax})",  # Turkish writes %15
            rf"(?P<unit_n>{num})\s?(?P<unit>{units})(?![\w/])",
        ]
        if r.ordinal_re:
            parts.append(rf"(?<![\w.,])(?P<ord>\d+){r.ordinal_re}")
        if r.ordinal_before:
            parts.append(rf"(?<![\w.,])(?P<ord2>\d+)\.(?={r.ordinal_before})")
        parts.append(rf"(?P<num>{num})")
        self.pattern = re.compile("|".join(parts))

    def value(self, text: str) -> Decimal:
        r = self.rules
        for g in r.groups:
            text = text.replace(g, "")
        return Decimal(text.replace(r.decimal, "."))

    def words(self, value: Decimal, to: str = "cardinal") -> str:
        from num2words import num2words

        if value < 0:
            minus = {"en": "minus", "de": "minus", "es": "menos", "fr": "moins", "it": "meno",
                     "pt": "menos", "ru": "минус", "pl": "minus", "tr": "eksi",
                     "ja": "マイナス", "ko": "마이너스"}[self.lang]
            return f"{minus} {self.words(-value, to)}"
        number: int | Decimal = int(value) if value == value.to_integral_value() \
            and "." not in str(value) else value
        try:
            return num2words(number, lang=self.lang, to=to)
        except (NotImplementedError, ValueError, TypeError, OverflowError):
            return num2words(number, lang=self.lang)

    def currency(self, amount: str, code: str) -> str:
        from num2words import num2words

        value = self.value(amount)
        try:
            if self.lang == "tr" and code == "TRY":
                return num2words(float(value), lang="tr", to="currency")
            text = num2words(value if value != value.to_integral_value() else
                             Decimal(f"{int(value)}.00"), lang=self.lang, to="currency",
                             currency=code)
            if value == value.to_integral_value():  # "five dollars, zero cents" -> "five dollars"
                text = re.split(r",|\s(?:and|und|con|et|e|y)\s", text)[0].strip() \
                    if self.lang not in ("ja", "ko") else text
            return text
        except (NotImplementedError, ValueError, TypeError, KeyError, OverflowError):
            forms = self.rules.currency.get(code)
            words = self.words(value)
            sp = self.rules.space
            return f"{words}{sp}{_plural(forms, value)}" if forms else f"{words} {code}"

    def time(self, hh: str, mm: str, ampm: str | None) -> str:
        r = self.rules
        h, m = int(hh), int(mm)
        hours = self.words(Decimal(h))
        if self.lang == "fr" and h == 1:
            hours = "une"
        if m == 0:
            said = r.time_whole.format(h=hours)
        elif self.lang == "en" and m < 10:
            said = r.time.format(h=hours, m=f"oh {self.words(Decimal(m))}")
        else:
            said = r.time.format(h=hours, m=self.words(Decimal(m)))
        if self.lang == "fr" and h == 1:
            said = said.replace("heures", "heure")
        if ampm:
            said += " a m" if ampm.lower() == "a" else " p m"
        return said

    def __call__(self, m: re.Match[str]) -> str:
        r = self.rules
        g = m.groupdict()
        try:
            if g["cur_sym"]:
                return self.currency(g["cur_a"], _SYMBOLS[g["cur_sym"]])
            if g["cur_b"]:
                sym = g["cur_sym2"]
                return self.currency(g["cur_b"], _SYMBOLS.get(sym, sym))
            if g["hh"]:
                return self.time(g["hh"], g["mm"], g["ampm"])
            if g["pct"] or g["pct2"]:
                value = self.value(g["pct"] or g["pct2"])
                word = _plural(r.percent, value)
                return f"{word} {self.words(value)}" if r.percent_before else \
                    f"{self.words(value)}{r.space}{word}"
            if g["unit_n"]:
                value = self.value(g["unit_n"])
                return f"{self.words(value)}{r.space}{_plural(r.units[g['unit']], value)}"
            if g.get("ord") or g.get("ord2"):
                said = self.words(Decimal(g.get("ord") or g.get("ord2")), "ordinal")
                if self.lang == "de" and _DE_DATIVE.search(m.string, 0, m.start()):
                    said += "n"  # "am dritten Mai"
                return said
            value = self.value(g["num"])
            if r.years and 1000 <= value <= 2099 and value == int(value) and \
                    g["num"].isdigit():
                return self.words(value, "year")
            return self.words(value)
        except (InvalidOperation, ValueError, OverflowError):
            return m.group(0)


_DE_DATIVE = re.compile(r"\b(?:am|im|vom|zum|beim|dem)\s+$", re.I)
_READERS: dict[str, _Reader] = {}


def read_numbers(text: str, lang: str) -> str:
    """`text` with its numbers and symbols as words of `lang` (as written where the
    language has no reader); `[cues]` pass through byte for byte."""
    if lang not in RULES or not any(ch.isdigit() for ch in text):
        return text
    reader = _READERS.get(lang) or _READERS.setdefault(lang, _Reader(lang))
    pieces = _CUE_RE.split(text)
    return "".join(p if i % 2 else reader.pattern.sub(reader, p) for i, p in enumerate(pieces))
