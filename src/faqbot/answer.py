"""What people read: a SearchResult as chat markdown (browser, `/ask`) or plain text (terminal).

Everything is written in the language the question was asked in, labels included. FAQ text is markdown from
the docs and user text is arbitrary, so both pass through escaping here: raw HTML is shown as text, never run.
"""

from __future__ import annotations

from functools import lru_cache

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from markdown_it import MarkdownIt

from faqbot.schema import Hit, SearchResult
from faqbot.text import scrub_text  # noqa: F401 - re-exported: answer.scrub_text is used by the front ends

if TYPE_CHECKING:
    from faqbot.corpus_config import CorpusConfig

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "confidence": "Confidence",
        "high": "high",
        "medium": "medium",
        "low": "low",
        "version": "Version",
        "component": "Component",
        "docs": "Docs page",
        "source": "Source file",
        "related": "Related questions",
        "related_click": "Related questions are below; click one to ask it.",
        "other_matches": "Other matches",
        "not_covered": "This question is not covered by the FAQ.",
        "maybe": "🔎 May be related · 可能相关",
        "maybe_note": "No FAQ entry surely answers this; the closest one is below. Check that it fits your case.",
        "maybe_more": "Other entries that may help:",
        "maybe_click": "Other entries that may help are below; click one to ask it.",
        "closest": "The closest questions in the FAQ are:",
        "closest_click": "The closest questions in the FAQ are below; click one to ask it.",
        "no_closest": "Try asking about one of the topics the FAQ covers.",
        "fallback": "This FAQ entry exists only in Chinese, so it is shown in Chinese.",
        "note": "Note",
        "empty": "Please type a question.",
    },
    "zh": {
        "confidence": "置信度",
        "high": "高",
        "medium": "中",
        "low": "低",
        "version": "版本",
        "component": "组件",
        "docs": "文档页面",
        "source": "源文件",
        "related": "相关问题",
        "related_click": "相关问题见下方，点击即可提问。",
        "other_matches": "其他匹配",
        "not_covered": "FAQ 中没有涵盖这个问题。",
        "maybe": "🔎 可能相关 · May be related",
        "maybe_note": "FAQ 中没有确定能回答这个问题的条目；下面是最接近的一条，请确认是否符合你的情况。",
        "maybe_more": "其他可能有帮助的条目：",
        "maybe_click": "其他可能有帮助的条目见下方，点击即可提问。",
        "closest": "FAQ 中最接近的问题：",
        "closest_click": "下面是 FAQ 中最接近的问题，点击即可提问。",
        "no_closest": "可以问问 FAQ 涵盖的主题相关的问题。",
        "fallback": "该条目只有英文版本，以下显示英文原文。",
        "note": "提示",
        "empty": "请输入一个问题。",
    },
}

_CONFIDENCE_MARK = {"high": "🟢", "medium": "🟡", "low": "🟠"}


@dataclass(frozen=True)
class Bands:
    """Levels of the confidence indicator on `SearchResult.confidence`, a calibrated probability that the
    first entry answers the question (calibration.py): high means right at least 9 times in 10."""

    high: float = 0.90
    medium: float = 0.70


DEFAULT_BANDS = Bands()


def labels(lang: str, config: "CorpusConfig | None" = None) -> dict[str, str]:
    """The UI texts in `lang`; a corpus config's own not-covered, topics and empty-question texts win."""
    base = LABELS.get(lang, LABELS["en"])
    if config is None:
        return base
    own = {"not_covered": config.text(config.not_covered, lang), "no_closest": config.text(config.topics, lang),
           "empty": config.text(config.empty, lang)}
    return {**base, **{k: v for k, v in own.items() if v}}


def fallback_lines(config: "CorpusConfig | None", query: str, lang: str, markdown: bool = True) -> list[str]:
    """The corpus's "search the docs / open an issue" links for a question it does not cover, query filled in."""
    if config is None:
        return []
    links = config.fallback_links(query, lang)
    if markdown:
        return [" · ".join(f"[{faq_markdown(_one_line(label))}]({link_target(url)})" for label, url in links)] if links else []
    return [f"{label}: {url}" for label, url in links]


def confidence_level(confidence: float, bands: Bands = DEFAULT_BANDS) -> str:
    if confidence >= bands.high:
        return "high"
    if confidence >= bands.medium:
        return "medium"
    return "low"


# --- text hygiene -------------------------------------------------------------------------------------------

# Characters that str.splitlines() (and JavaScript) treat as line breaks but JSON leaves raw.
_JSON_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def json_line(obj) -> str:
    """One JSON object on exactly one line, UTF-8 readable: U+2028, U+2029 and U+0085 escaped (json leaves them
    raw, and `splitlines()` or a JavaScript reader would split there)."""
    import json

    out = json.dumps(obj, ensure_ascii=False)
    for raw, escaped in _JSON_LINE_BREAKS.items():
        out = out.replace(raw, escaped)
    return scrub_text(out)


# --- link schemes -------------------------------------------------------------------------------------------

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})  # and relative links (no scheme)
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
# Where CommonMark (and GFM) take a link destination: inline `](dest`, reference definitions `[x]: dest`,
# and autolinks `<scheme:...>`; the destination either in <...> or up to whitespace.
_INLINE_DEST = re.compile(r"(\]\(\s*)(<[^>\n]*>|[^\s<>]+)")
_REF_DEST = re.compile(r"(^ {0,3}\[(?:[^\]\\]|\\.)+\]:\s*)(<[^>\n]*>|\S+)", re.MULTILINE)
_AUTOLINK_DEST = re.compile(r"(<)([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*)(?=>)")
# and raw HTML attributes, for consumers of the JSON `answer` that render HTML in markdown
_HTML_DEST = re.compile(r"""(\b(?:href|src|srcset|action|formaction|xlink:href|background|poster)\s*=\s*["']?\s*)([^"'\s>]+)""", re.IGNORECASE)


def link_scheme(url: str) -> str | None:
    """The scheme a browser would see in `url` (lower case), None for a relative link. Entities and
    percent-escapes are decoded and the characters browsers ignore (controls, whitespace, zero-width) dropped,
    so `&#106;ava&#x09;script:`, `JAVA SCRIPT:` or `%6aavascript:` all read as javascript."""
    text = url.strip("<>")
    for _ in range(3):  # nested encodings: &amp;#106; and %25 6a
        decoded = unquote(html.unescape(text))
        if decoded == text:
            break
        text = decoded
    text = _IGNORED_IN_URL.sub("", text).lower()
    m = _SCHEME.match(text)
    return m.group(1) if m else None


def safe_link(url: str) -> bool:
    scheme = link_scheme(url)
    return scheme is None or scheme in SAFE_SCHEMES


def _code_mask(md: str) -> str:
    """`md` with code (fenced/indented blocks and inline code spans) blanked out, same length: links there are text."""
    code = _code_lines(md)
    lines = md.split("\n")
    for n, line in enumerate(lines):
        lines[n] = " " * len(line) if n in code else _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
    return "\n".join(lines)


def _defang(dest: str) -> str:
    """A destination with an unsafe scheme made a harmless relative link that still shows where it pointed."""
    if dest.startswith("<"):
        return "<#blocked:" + quote(dest[1:-1] if dest.endswith(">") else dest[1:], safe="") + ">"
    return "#blocked:" + quote(dest, safe="()")


@lru_cache(maxsize=2048)
def safe_links(md: str) -> str:
    """Markdown whose links and images point only to http, https, mailto or relative targets; any other
    scheme (javascript:, data:, vbscript:, file:, with case, whitespace or entity tricks) is made inert.
    Code blocks and spans are left as they are. Cached: it is called on FAQ answers, a fixed set, and parsing
    them took 3 of the 4 ms an /api/search request spent outside the model."""
    if ":" not in md and "&" not in md and "%" not in md:
        return md
    for _ in range(4):  # an edit can reveal another candidate; the text only shrinks in bad links
        mask = _code_mask(md)
        edits = []
        for pattern in (_INLINE_DEST, _REF_DEST, _AUTOLINK_DEST, _HTML_DEST):
            for m in pattern.finditer(mask):
                dest = md[m.start(2) : m.end(2)]
                if not safe_link(dest):
                    edits.append((m.start(2), m.end(2), dest))
        if not edits:
            break
        for start, end, dest in sorted(set(edits), reverse=True):
            md = md[:start] + _defang(dest) + md[end:]
    if _links_all_safe(md):
        return md
    # A form the patterns above missed: no link syntax survives at all outside code.
    mask = _code_mask(md)
    return "".join("\\" + ch if ch in "[<" and mask[i] == ch else ch for i, ch in enumerate(md))


def _links_all_safe(md: str) -> bool:
    """Checked with a parser that accepts every scheme, so nothing is hidden by markdown-it's own filter."""
    for token in _PERMISSIVE_MD.parse(md):
        for child in token.children or ():
            if child.type in ("link_open", "image") and not safe_link(str(child.attrs.get("href") or child.attrs.get("src") or "")):
                return False
    return True


# --- escaping -----------------------------------------------------------------------------------------------

_ASCII_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def escape_markdown(text: str) -> str:
    """Text shown exactly as typed: every markdown/HTML character is backslash-escaped (CommonMark rule)."""
    out = []
    for line in text.split("\n"):
        escaped = "".join("\\" + c if c in _ASCII_PUNCT else c for c in line)
        # leading spaces would turn a line into a code block
        out.append(escaped.lstrip(" \t") if escaped[:4].strip() == "" else escaped)
    return "\n".join(out)


# Tags the docs use for layout; kept (attributes filtered), every other tag is shown as text.
_SAFE_TAGS = {"br", "table", "thead", "tbody", "tr", "td", "th", "p", "b", "i", "em", "strong", "sub", "sup", "ul", "ol", "li"}
_SAFE_ATTRS = {"rowspan", "colspan", "align"}
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)((?:\s+[A-Za-z_:][-\w:.]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)\s*(/?)>")
_ATTR = re.compile(r"([A-Za-z_:][-\w:.]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?")
_AUTOLINK = re.compile(r"<(?:[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)>")
_MD = MarkdownIt("commonmark")
_PERMISSIVE_MD = MarkdownIt("commonmark")
_PERMISSIVE_MD.validateLink = lambda url: True  # see every link, to check its scheme ourselves
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")


def _safe_tag(m: re.Match) -> str | None:
    closing, name, attrs, selfclose = m.group(1), m.group(2).lower(), m.group(3), m.group(4)
    if name not in _SAFE_TAGS:
        return None
    kept = []
    for am in _ATTR.finditer(attrs or ""):
        if am.group(1).lower() in _SAFE_ATTRS and am.group(2):
            value = am.group(2).strip("\"'")
            if re.fullmatch(r"[\w -]{1,20}", value):
                kept.append(f'{am.group(1).lower()}="{value}"')
    return "<" + closing + name + "".join(" " + a for a in kept) + ("/" if selfclose else "") + ">"


def _escape_html_outside_code_spans(line: str) -> str:
    parts, pos = [], 0
    for m in _CODE_SPAN.finditer(line):
        parts.append(_escape_html(line[pos : m.start()]))
        parts.append(m.group(0))
        pos = m.end()
    parts.append(_escape_html(line[pos:]))
    return "".join(parts)


def _escape_html(text: str) -> str:
    out, i = [], 0
    while True:
        j = text.find("<", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        tag = _TAG.match(text, j)
        safe = _safe_tag(tag) if tag else None
        if safe is not None:
            out.append(safe)
            i = tag.end()
            continue
        link = _AUTOLINK.match(text, j)
        if link and safe_link(link.group(0)[1:-1]):
            out.append(link.group(0))
            i = link.end()
            continue
        out.append("&lt;")
        i = j + 1


def _code_lines(md: str) -> set[int]:
    """Line numbers inside fenced or indented code blocks, nested in lists and quotes too (per CommonMark)."""
    lines: set[int] = set()
    for token in _MD.parse(md):
        if token.type in ("fence", "code_block") and token.map:
            lines.update(range(*token.map))
    return lines


def safe_markdown(md: str) -> str:
    """FAQ markdown with its code intact, raw HTML shown as text (a few harmless layout tags excepted) and
    links limited to safe schemes (`safe_links`)."""
    code = _code_lines(md)
    escaped = "\n".join(line if n in code else _escape_html_outside_code_spans(line) for n, line in enumerate(md.split("\n")))
    return safe_links(escaped)


@lru_cache(maxsize=4096)
def faq_markdown(md: str) -> str:
    """`safe_markdown` of an FAQ entry's own answer or question (or a corpus config's link label), kept: the same
    texts are shown again and again, and parsing one takes 0.1-0.2 ms, five times a response (answers in the JSON;
    the title and up to four suggested questions in the chat's markdown). Only the corpus's texts come here,
    never a user's."""
    return safe_markdown(md)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- suggestions --------------------------------------------------------------------------------------------


def suggestions(result: SearchResult, related: Sequence[Hit] = (), limit: int = 4) -> list[str]:
    """Questions to offer next: related entries (then the runners-up) after an answer, the nearest entries
    after an off-topic one; each once, never the answered question itself."""
    if result.match == "related":  # the best entry is shown; the runners-up are the likeliest alternatives
        pool = [*result.hits[1:], *related]
        seen = {_one_line(result.hits[0].entry.question)} if result.hits else set()
    elif result.in_scope:
        pool = [*related, *result.hits[1:]]
        seen = {_one_line(result.hits[0].entry.question)} if result.hits else set()
    else:
        pool, seen = list(result.hits), set()
    out: list[str] = []
    for hit in pool:
        question = _one_line(hit.entry.question)
        if question and question not in seen:
            seen.add(question)
            out.append(question)
        if len(out) >= limit:
            break
    return out


# --- chat markdown ------------------------------------------------------------------------------------------


def _meta_line(hit: Hit, lang: str, confidence: float, bands: Bands) -> str:
    L = labels(lang)
    level = confidence_level(confidence, bands)
    parts = [
        f"{_CONFIDENCE_MARK[level]} **{L['confidence']}:** {L[level]} ({confidence:.2f})",
        f"**{L['version']}:** {hit.item.version}" if hit.item.version else "",  # an unversioned FAQ shows none
        f"**{L['component']}:** {hit.item.component}",
    ]
    return " · ".join(p for p in parts if p)


def link_target(url: str) -> str:
    """A URL safe inside markdown `(...)`: spaces, brackets and non-ASCII anchors percent-encoded."""
    return quote(url, safe=":/#?&=%@+,;~!*'-._")


def _links_line(hit: Hit, lang: str) -> str:
    L = labels(lang)
    links = []
    if hit.entry.url:
        links.append(f"[📖 {L['docs']}]({link_target(hit.entry.url)})")
    if hit.entry.source_url:
        links.append(f"[📄 {L['source']}]({link_target(hit.entry.source_url)})")
    return " · ".join(links)


def _notes(result: SearchResult) -> list[str]:
    if not result.message:
        return []
    return [f"> **{labels(result.lang)['note']}:** {safe_markdown(_one_line(result.message))}", ""]


def render_answer_markdown(hit: Hit, lang: str, confidence: float, bands: Bands = DEFAULT_BANDS) -> str:
    """One FAQ entry as a support answer: title, rendered answer, confidence, version/component, links."""
    L = labels(lang)
    lines = [f"### {faq_markdown(_one_line(hit.entry.question))}", ""]
    if hit.fallback:
        lines += [f"*{L['fallback']}*", ""]
    lines += [faq_markdown(hit.entry.answer.strip()), "", _meta_line(hit, lang, confidence, bands)]
    links = _links_line(hit, lang)
    if links:
        lines += ["", links]
    return "\n".join(lines)


def render_markdown(
    result: SearchResult,
    bands: Bands = DEFAULT_BANDS,
    related: Sequence[Hit] = (),
    list_suggestions: bool = True,
    config: "CorpusConfig | None" = None,
) -> str:
    """Chat markdown for a result. `list_suggestions=False` when the UI shows them as buttons instead.
    `config`: the corpus's not-covered text, topics and fallback links (None: the built-in texts)."""
    L = labels(result.lang, config)
    lines = _notes(result)
    if not result.query.strip() and not result.hits:
        return "\n".join(lines + [L["empty"]]).strip()
    if result.match == "related" and result.hits:
        lines += [f"**{L['maybe']}**", "", f"*{L['maybe_note']}*", "",
                  render_answer_markdown(result.hits[0], result.lang, result.confidence, bands)]
        heading = L["maybe_more"]
    elif result.in_scope and result.hits:
        lines.append(render_answer_markdown(result.hits[0], result.lang, result.confidence, bands))
        heading = L["related"]
    else:
        closest = suggestions(result)
        lines.append(f"**{L['not_covered']}**")
        lines += [x for line in fallback_lines(config, result.query, result.lang) for x in ("", line)]
        if not closest:
            lines += ["", L["no_closest"]]
        elif not list_suggestions:
            lines += ["", L["closest_click"]]
        heading = L["closest"]
    more = suggestions(result, related)
    if not list_suggestions and more and result.in_scope:
        lines += ["", f"*{L['maybe_click'] if result.match == 'related' else L['related_click']}*"]
    if list_suggestions and more:
        lines += ["", f"**{heading}**", ""] + [f"- {faq_markdown(q)}" for q in more]  # corpus questions
    return "\n".join(lines).strip()


# --- terminal -----------------------------------------------------------------------------------------------

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _display_width(text: str) -> int:
    """Terminal columns: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render_text(result: SearchResult, bands: Bands = DEFAULT_BANDS, related: Sequence[Hit] = (),
                config: "CorpusConfig | None" = None) -> str:
    """Plain text for `faqbot ask`: the answer with its source, or an honest "not covered" and the nearest questions.
    `config`: the corpus's not-covered text, topics and fallback links (None: the built-in texts)."""
    L = labels(result.lang, config)
    out: list[str] = []
    if result.message:
        out += [f"{L['note']}: {result.message}", ""]
    if not result.query.strip() and not result.hits:
        return "\n".join(out + [L["empty"]]).strip()
    if result.in_scope and result.hits:
        top = result.hits[0]
        level = confidence_level(result.confidence, bands)
        title = _one_line(top.entry.question)
        if result.match == "related":
            out += [L["maybe"], L["maybe_note"], ""]
        out += [title, "=" * min(72, max(10, _display_width(title)))]
        if top.fallback:
            out += [L["fallback"], ""]
        out += [
            _BR.sub("\n", top.entry.answer.strip()),
            "",
            f"{L['confidence']}: {L[level]} ({result.confidence:.2f})   "
            + (f"{L['version']}: {top.item.version}   " if top.item.version else "")
            + f"{L['component']}: {top.item.component}",
        ]
        if top.entry.url:
            out.append(f"{L['docs']}: {top.entry.url}")
        if top.entry.source_url:
            out.append(f"{L['source']}: {top.entry.source_url}")
        others = result.hits[1:]
        if related:
            out += ["", f"{L['related']}:"] + [f"  - {q}" for q in suggestions(result, related)]
        elif others:
            out += ["", f"{L['other_matches']}:"] + [
                f"  - {_one_line(h.entry.question)}  ({h.score:.2f}, {h.item.version})" for h in others
            ]
    else:
        out.append(L["not_covered"])
        out += fallback_lines(config, result.query, result.lang, markdown=False)
        closest = result.hits[:4]
        if closest:
            out += ["", L["closest"]] + [
                f"  - {_one_line(h.entry.question)}  ({h.score:.2f}, {h.item.version})" for h in closest
            ]
        else:
            out += ["", L["no_closest"]]
    return "\n".join(out).rstrip()
