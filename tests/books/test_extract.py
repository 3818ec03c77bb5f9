"""Books in: EPUB chapters in spine order without notes, Markdown and plain text, and the
refusals (not a zip, no text)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from bark_engine.errors import BadInputError
from bark_engine.scripts.parse import parse_script
from bark_tui.books.extract import read_book
from bark_tui.books.html_text import html_blocks


def test_html_blocks_drop_notes_and_page_numbers():
    markup = """<html xmlns:epub="http://www.idpf.org/2007/ops"><body>
      <h1>Chapter <em>One</em></h1>
      <p>It began.<a epub:type="noteref" href="#n1">1</a> Then<sup>2</sup> more
      <span epub:type="pagebreak" title="7">7</span>words<br/>here.</p>
      <p class="footnote">A note.</p>
      <section epub:type="footnotes"><p id="n1">Never read.</p></section>
      <aside><p>Aside.</p></aside><script>x()</script>
      <h3>A part</h3><ul><li>First item</li><li>Second</li></ul>
    </body></html>"""
    assert html_blocks(markup) == [(1, "Chapter One"), (0, "It began. Then more words here."),
                                   (2, "A part"), (0, "First item"), (0, "Second")]


def test_a_markdown_book(tmp_path: Path):
    md = tmp_path / "b.md"
    md.write_text("Title: Notes\n\n# First\n\nSome **bold** and [a link](http://x) text,\n"
                  "on two lines.\n\n## Sub\n\nMore.\n\n# Second\n\n`code` end.\n",
                  encoding="utf-8")
    book = read_book(md)
    assert book.title == "Notes"
    assert book.chapters == (("First", ("Some bold and a link text, on two lines.", "Sub",
                                        "More.")), ("Second", ("code end.",)))
    script = parse_script(book.script())
    assert [c.title for c in script.chapters] == ["First", "Second"]
    assert script.title == "Notes"


def test_plain_text_is_one_chapter(tmp_path: Path):
    txt = tmp_path / "story.txt"
    txt.write_text("Once upon a time.\n\nThe end.\n", encoding="utf-8")
    assert read_book(txt).chapters == (("Chapter 1", ("Once upon a time.", "The end.")),)


def test_refusals(tmp_path: Path):
    not_zip = tmp_path / "a.epub"
    not_zip.write_text("hello", encoding="utf-8")
    with pytest.raises(BadInputError, match="not a zip file"):
        read_book(not_zip)
    empty_zip = tmp_path / "b.epub"
    with zipfile.ZipFile(empty_zip, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
    with pytest.raises(BadInputError, match="not a readable EPUB"):
        read_book(empty_zip)
    blank = tmp_path / "c.txt"
    blank.write_text("\n\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="no text to read"):
        read_book(blank)
    with pytest.raises(BadInputError, match="not found"):
        read_book(tmp_path / "missing.epub")


def test_an_epub_without_text(tmp_path: Path):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("empty")
    book.set_title("Empty")
    c = epub.EpubHtml(title="Blank", file_name="c.xhtml")
    c.content = "<html><body><h1>Blank</h1></body></html>"
    book.add_item(c)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [c]
    path = tmp_path / "empty.epub"
    epub.write_epub(str(path), book)
    with pytest.raises(BadInputError, match="has no text to read"):
        read_book(path)


def test_m4b_without_pyav_says_what_to_install(tmp_path: Path):
    """PyAV missing (blocked in a fresh interpreter): one line naming the extra."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['av'] = None\n"
            "from bark_tui.cli.main import main\n"
            f"sys.exit(main(['say', 'hi', '--out', {str(tmp_path / 'x.m4b')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == ("bark-tui: error: M4B/M4A needs PyAV: "
                                   "pip install 'bark-tui[m4b]'")
    assert not list(tmp_path.iterdir())
