"""A user's lexicon: how to say names and jargon, per language, from a TOML file.

    [all]                      # every language
    "SQL" = "sequel"
    [en]
    "Nguyen" = "Win"
    [en.regex]                 # regular expressions (Python syntax) -> replacements
    '\\bDr\\.' = "Doctor"

Plain entries match whole words, case-sensitively; regular expressions are
applied as written. Entries run longest first, after the numbers are read.
`[cues]` are never touched.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bark_engine.errors import BadInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_CUE_RE = re.compile(r"(\[[^\[\]]*\])")


@dataclass(frozen=True)
class Lexicon:
    """Compiled replacements per language ("all" applies to every language)."""

    rules: dict[str, tuple[tuple[re.Pattern[str], str], ...]]

    def apply(self, text: str, lang: str | None) -> str:
        rules = self.rules.get("all", ()) + (self.rules.get(lang, ()) if lang else ())
        if not rules:
            return text
        pieces = _CUE_RE.split(text)
        for i in range(0, len(pieces), 2):
            for pattern, replacement in rules:
                pieces[i] = pattern.sub(replacement, pieces[i])
        return "".join(pieces)


EMPTY = Lexicon({})


def parse_lexicon(text: str, label: str = "lexicon") -> Lexicon:
    """A lexicon from TOML text; a file that does not parse is one line naming the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{label}: not valid TOML: {exc}") from None
    rules: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {}
    for lang, table in data.items():
        if not isinstance(table, dict):
            raise BadInputError(f"{label}: '{lang}' must be a table such as [{lang}] "
                                "holding \"word\" = \"replacement\" lines")
        words: list[tuple[str, str]] = []
        found: list[tuple[re.Pattern[str], str]] = []
        for key, value in table.items():
            if key == "regex" and isinstance(value, dict):
                for expr, repl in value.items():
                    if not isinstance(repl, str):
                        raise BadInputError(f"{label}: [{lang}.regex] '{expr}' must map to "
                                            "a string")
                    try:
                        found.append((re.compile(expr), repl))
                    except re.error as exc:
                        raise BadInputError(f"{label}: [{lang}.regex] '{expr}' is not a "
                                            f"valid regular expression: {exc}") from None
                continue
            if not isinstance(value, str):
                raise BadInputError(f"{label}: [{lang}] '{key}' must map to a string")
            words.append((key, value))
        words.sort(key=lambda kv: len(kv[0]), reverse=True)
        compiled = [(re.compile(rf"(?<!\w){re.escape(k)}(?!\w)"), v.replace("\\", "\\\\"))
                    for k, v in words]
        rules[lang.lower()] = tuple(compiled + found)
    return Lexicon(rules)


def load_lexicon(path: Path) -> Lexicon:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"lexicon file not found: {path}") from None
    except OSError as exc:
        raise BadInputError(f"cannot read lexicon {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInputError(f"lexicon {path} is not UTF-8 text") from None
    return parse_lexicon(text, str(path))
