"""The studio's text rules from its settings: numbers read aloud and the lexicon
file, read again only when the file changes (the preview parses on every key)."""

from __future__ import annotations

from pathlib import Path

from bark_engine.errors import BarkError

from .lexicon import EMPTY, Lexicon, load_lexicon
from .rewrite import Rewriter

_cache: dict[str, tuple[float, Lexicon, str | None]] = {}  # path -> (mtime, lexicon, problem)

LEXICON_TEMPLATE = """\
# How Bark should say names and jargon (bark-tui lexicon, TOML).
# [all] applies to every language; [en], [de], ... to text in that language.
# Plain entries match whole words; [LANG.regex] holds regular expressions.

[all]
# "SQL" = "sequel"

[en]
# "Nguyen" = "Win"

[en.regex]
# '\\bDr\\.' = "Doctor"
"""


def lexicon_for(path_text: str | None) -> tuple[Lexicon, str | None]:
    """The lexicon at `path_text` and a problem to show, if any (then it is not used)."""
    if not path_text:
        return EMPTY, None
    path = Path(path_text).expanduser()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return EMPTY, f"lexicon {path} not found: names are read as written"
    cached = _cache.get(str(path))
    if cached is not None and cached[0] == mtime:
        return cached[1], cached[2]
    try:
        lexicon, problem = load_lexicon(path), None
    except BarkError as exc:
        lexicon, problem = EMPTY, f"{exc} (the lexicon is not used until it is fixed)"
    _cache[str(path)] = (mtime, lexicon, problem)
    return lexicon, problem


def studio_rewriter(settings) -> tuple[Rewriter, list[str]]:
    lexicon, problem = lexicon_for(settings.lexicon_file)
    return Rewriter(normalize=settings.read_numbers, lexicon=lexicon), (
        [problem] if problem else [])
