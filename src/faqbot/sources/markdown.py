"""Any team's markdown FAQ: question headings at any level (`##` included), `Q:`/`问：`/`问题：` questions,
`A:`/`答：`/`答复：` answer prefixes, `----------` separators and `+ 答复：` list-wrapped answers.

The line scanner is corpus.py's (parse_page in its generic mode); this module only clears what
a docs site adds around the FAQ first: YAML front matter, HTML comments (licence headers whose lines start
with `#`), and raw HTML headings (`<h3 name="x">question</h3>`) turned into markdown headings.
"""

from __future__ import annotations

import re
from pathlib import Path

from faqbot.corpus import _clean_answer, _question_level, _scan, parse_page
from faqbot.schema import Problem
from faqbot.sources.record import Record, bad

_FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HTML_HEADING = re.compile(r"^[ \t]*<h([1-6])([^>]*)>(.*?)</h\1>[ \t]*$", re.S | re.M | re.I)
_ATTR_ID = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")
_CODE = re.compile(r"<code>(.*?)</code>", re.S | re.I)
_FAQ_NAME = re.compile(r"faq|q&a|qna|常见问题|问答|问题", re.I)


def _reads_as_faq(rel: str, title: str, questions: list[str]) -> bool:
    """Headings are taken as questions (no Q marker on the page) only when they read like a FAQ: most end with
    a question mark, or there are several and the file name or page title says FAQ. A prose page stays prose."""
    asked = sum(q.rstrip().endswith(("?", "？")) for q in questions)
    return bool(questions) and (asked * 2 >= len(questions) or (len(questions) >= 2 and bool(_FAQ_NAME.search(rel + " " + title))))


def _blank(match: re.Match) -> str:
    """The same number of lines, emptied: line numbers in messages stay those of the file."""
    return "\n" * match.group(0).count("\n")


def preprocess(text: str) -> tuple[str, dict[str, str]]:
    """(text without front matter, comments and HTML headings; question -> anchor of its HTML heading)."""
    text = _FRONT_MATTER.sub(_blank, text.lstrip("\ufeff"), count=1)
    text = _COMMENT.sub(_blank, text)
    anchors: dict[str, str] = {}

    def heading(m: re.Match) -> str:
        inner = _CODE.sub(r"`\1`", m.group(3))
        title = " ".join(re.sub(r"<[^>]+>", "", inner).split())
        attr = _ATTR_ID.search(m.group(2))
        if attr:
            anchors[title] = attr.group(1)
        return "#" * int(m.group(1)) + " " + title + "\n" * m.group(0).count("\n")

    return _HTML_HEADING.sub(heading, text), anchors


def load_markdown(path: Path, rel: str, lang_hint: str | None) -> tuple[list[Record], list[Problem]]:
    text = path.read_bytes().decode("utf-8-sig")
    text, html_anchors = preprocess(text)
    title, _, blocks = parse_page(text, generic=True)
    if _question_level(_scan(text)) is not None and not _reads_as_faq(rel, title, [b.question for b in blocks]):
        return [], []
    records: list[Record] = []
    problems: list[Problem] = []
    for b in blocks:
        answer = _clean_answer(b.lines)
        if not b.question:
            problems.append(bad(rel, b.start + 1, "a question marker with no question text; it was skipped"))
            continue
        if not answer:
            problems.append(bad(rel, b.start + 1, f"the question {b.question[:60]!r} has no answer; it was skipped"))
            continue
        path_ = b.heading_path if b.heading_path else ((title,) if title else ())
        records.append(Record(
            question=b.question, answer=answer, page=rel, line=b.start + 1, lang_hint=lang_hint,
            heading_path=path_, anchor=html_anchors.get(b.question) or b.anchor or "", position=len(records),
        ))
    return records, problems
