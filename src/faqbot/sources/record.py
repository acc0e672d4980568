"""What a loader hands back: one question/answer record per row or markdown block, before language detection
and pairing (assemble.py). Small and format-free so every loader speaks the same shape."""

from __future__ import annotations

from dataclasses import dataclass

from faqbot.schema import Problem


@dataclass
class Record:
    question: str
    answer: str  # markdown
    page: str  # file relative to the corpus root (posix)
    line: int  # 1-based line (row) where the record starts, for messages
    lang_hint: str | None = None  # a `lang` cell, or what the file's path suggests
    explicit_lang: bool = False  # the `lang` came from the row itself, not from a path
    id: str = ""  # an explicit id: records sharing one id in two languages are twins
    alternates: tuple[str, ...] = ()  # other wordings of the question
    url: str = ""
    source_url: str = ""
    version: str = ""
    component: str = ""
    category: str = ""
    heading_path: tuple[str, ...] = ()
    anchor: str = ""  # heading id on the page, for link templates
    position: int = 0  # order within its file


def bad(page: str, line: int | None, why: str) -> Problem:
    """A problem message that says where (file:line) and what to do."""
    where = f"{page}:{line}" if line else page
    return Problem(page, f"{where}: {why}")
