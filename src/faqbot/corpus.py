"""Read the bundled documentation FAQ pages (the "versioned-docs" layout) into FaqEntry / FaqItem objects.

Parsing is a line scanner, not markdown-it-py: the pages are line-oriented (one question marker per line,
headings, numbered cases) and the answer must come back as the *original* markdown, which a token stream
would force us to re-render. The scanner only needs to know three things per line -- inside a code fence or
not, heading or not, question marker or not -- so a few regexes keep it short and easy to check by eye.

Page formats handled:
  * Q/A pages: the question in `<font size=3>**Q: ...**</font>`, in a `## Q: ...` / `### Q: ...` heading, or
    in a bold `**Q: ...**` line (half- or full-width colon, or none: "**Q 为何...**"). The answer runs to
    the next question, or the next heading (of the same or higher level for a heading question).
  * troubleshooting pages (lite reference/faq.md): sections without Q markers on a page that has some are
    made of numbered cases ("1. <symptom>..."); each top-level numbered item is one entry, its symptom the
    question, the headings above it the heading_path.
  * pages with no Q marker at all (e.g. a component's faqs.md): each `###` (or deeper) heading with content is a
    question, the `##` above it its category. Plain prose pages thus yield nothing and are reported.

zh/en twins are paired by an order-preserving alignment (Needleman-Wunsch) over language-neutral signals;
a pair is only kept when its similarity clears a threshold, otherwise both stay one-language items.
"""

from __future__ import annotations

import functools
import hashlib
import re
import textwrap
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from faqbot.corpus_config import bundled_layout
from faqbot.schema import Corpus, FaqEntry, FaqItem, Problem

# ---------------------------------------------------------------- line patterns

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_Q_PREFIX = re.compile(r"^(?:Q(?:\s*[:：]\s*|\s+)|问题?\s*[:：]\s*)")
_FONT_Q = re.compile(r"^\s*<font[^>]*>\s*\*\*\s*((?:Q(?:\s*[:：]|\s)|问题?\s*[:：]).*?)\*+\s*</font>\s*$")
_BOLD_Q = re.compile(r"^\s*\*\*\s*((?:Q|问题?)\s*[:：].*?)\*\*\s*$")
_PLAIN_Q = re.compile(r"^\s*((?:Q|问题?)\s*[:：]\s*\S.*)$")  # generic pages only: a bare "Q: ..." line
_A_PREFIX = re.compile(r"^(\s*)(?:[+*-]\s+)?(?:\*\*)?(?:A|答复?)\s*[:：]\s*(?:\*\*)?\s*")
_LIST_WRAP = re.compile(r"^\s*[+*-]\s+")
_SEPARATOR = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
_BR_LINE = re.compile(r"^\s*<br\s*/?>\s*$", re.I)
_BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\((https?://gitee\.com/[^)\s]+)\)")
_CASE_ITEM = re.compile(r"^(\d+)[.)、]\s+(.*)$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


@dataclass
class _Line:
    text: str
    fenced: bool  # inside (or delimiting) a code fence


def _scan(text: str) -> list[_Line]:
    """Mark which lines belong to fenced code so headings/markers inside code are ignored."""
    out: list[_Line] = []
    fence: str | None = None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * 3
            out.append(_Line(line, True))
        elif fence is not None:
            out.append(_Line(line, True))
            if m and m.group(1).startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
        else:
            out.append(_Line(line, False))
    return out


# ---------------------------------------------------------------- text helpers


def clean_question(raw: str) -> str:
    """Plain question text: no font tags, bold markers, Q prefix or links; inline code kept."""
    q = re.sub(r"</?font[^>]*>", "", raw)
    q = q.replace("**", "").strip().strip("*").strip()
    q = _Q_PREFIX.sub("", q)
    q = _LINK.sub(r"\1", q)
    return re.sub(r"\s+", " ", q).strip()


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


def hash8(text: str) -> str:
    return hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()[:8]


def heading_slug(title: str) -> str:
    """The id Sphinx/MyST gives a heading: rendered text lowercased, punctuation dropped, spaces -> '-'.

    Unicode word characters (Chinese) are kept, as MyST's slug function does.
    """
    text = _LINK.sub(r"\1", title).replace("`", "").replace("**", "")
    text = re.sub(r"</?[a-zA-Z][^>]*>", "", text)
    text = text.strip().lower().replace(" ", "-")
    return re.sub(r"[^\w\- ]", "", text)


def _clean_answer(lines: list[str]) -> str:
    """Markdown answer: leading A: removed, <br/> separators dropped, trailing whitespace trimmed."""
    kept = [ln.rstrip() for ln in lines if not _BR_LINE.match(ln) and not _BADGE.search(ln)]
    while kept and not kept[0].strip():
        kept.pop(0)
    while kept and _SEPARATOR.match(kept[-1]) or kept and not kept[-1].strip():
        kept.pop()  # a trailing `----------` between entries is the page's separator, not the answer's
    if kept:
        first, body = kept[0], kept[1:]
        head = _A_PREFIX.sub(r"\1", first, count=1)
        if _LIST_WRAP.match(first) and _A_PREFIX.match(first):
            # "+ 答复：..." with the rest indented under that list item: the rest is dedented on its own
            head, body = head.strip(), textwrap.dedent("\n".join(body)).splitlines()
        kept = ([head] if head.strip() else []) + body
    text = "\n".join(kept).strip("\n")
    return textwrap.dedent(text).strip()


def _case_question(first_line: str) -> str:
    """The symptom of a numbered troubleshooting case: its first line minus a trailing 'log is as follows:'."""
    text = clean_question(first_line)
    if text.endswith((":", "：")):
        head = re.split(r"(?<=[.。，,;；])\s*(?=[^.。，,;；]*[:：]$)", text, maxsplit=1)
        text = head[0] if len(head) == 2 and head[0].strip() else text
        text = text.rstrip(":：，, ").strip()
    return text


# ---------------------------------------------------------------- page metadata

@functools.lru_cache(maxsize=1)
def _layout() -> dict:
    """The docs layout's own settings (versions, components, URL templates): the bundled config whose layout is
    "versioned-docs" (corpora/*.toml), so no product name is written here."""
    config = bundled_layout("versioned-docs")
    if config is None:
        raise RuntimeError("no bundled corpus config has layout = \"versioned-docs\"; reinstall faqbot")
    return {**config.docs, "components": frozenset(config.facets.get("component", ()))}


@dataclass(frozen=True)
class PageInfo:
    page: str  # relative to corpus root, posix
    version: str
    component: str
    category: str
    lang: str
    url: str  # rendered page, no anchor
    docs_path: str  # path inside the gitee docs repo


def page_info(rel: str) -> PageInfo:
    """Version, component, category, language and rendered URL of a page, from its path alone."""
    layout = _layout()
    parts = rel.split("/")
    top = parts[0]
    prefix, default_version = layout["version_prefix"], layout["default_version"]
    version = top.removeprefix(prefix) if top.startswith(prefix) and len(parts) > 1 else default_version
    docs_path = "/".join(parts[1:])
    lang = "zh" if "source_zh_cn" in parts else "en"
    site_lang = "zh-CN" if lang == "zh" else "en"
    stem = Path(rel).stem
    src = "source_zh_cn" if lang == "zh" else "source_en"
    inner = parts[parts.index(src) + 1:] if src in parts else parts[-1:]
    inner_html = "/".join(inner)[: -len(".md")] + ".html"
    default = layout["default_component"]
    if version == layout["legacy_version"]:
        component = layout["legacy_components"].get(stem, default)
        template = layout["legacy_page_url"]
    else:
        component = parts[2] if len(parts) > 2 and parts[2] in layout["components"] else default
        template = layout["page_url"] if component == default else layout["component_page_url"]
    url = template.format(site_lang=site_lang, version=version, inner_html=inner_html, component=component)
    category = component if stem in ("faq", "faqs") else stem
    return PageInfo(rel, version, component, category, lang, url, docs_path)


def twin_page(rel: str) -> str:
    if "/source_zh_cn/" in rel:
        return rel.replace("/source_zh_cn/", "/source_en/")
    return rel.replace("/source_en/", "/source_zh_cn/")


# ---------------------------------------------------------------- one page -> raw blocks


@dataclass
class _Block:
    question: str
    start: int
    heading_path: tuple[str, ...]
    anchor: str | None  # id of the heading the entry sits under (or is), for the URL fragment
    lines: list[str] = field(default_factory=list)
    level: int | None = None  # heading level for heading questions


@dataclass
class _Section:
    title: str
    level: int
    start: int
    heading_path: tuple[str, ...]  # including this section's title
    slug: str
    lines: list[tuple[int, _Line]] = field(default_factory=list)
    has_q: bool = False


def _inline_question(line: _Line) -> str | None:
    if line.fenced:
        return None
    m = _FONT_Q.match(line.text) or _BOLD_Q.match(line.text)
    return clean_question(m.group(1)) if m else None


def _heading(line: _Line) -> tuple[int, str] | None:
    if line.fenced:
        return None
    m = _HEADING.match(line.text)
    return (len(m.group(1)), m.group(2).strip()) if m else None


def _is_q_heading(title: str) -> bool:
    return bool(re.match(r"^(\*\*)?(?:Q|问题?)\s*[:：]", title))


def _question_level(lines: list[_Line]) -> int | None:
    """On a page with no Q marker: the heading level that holds the questions (None when the page has Q markers).

    The most frequent heading level wins (ties: the deeper one); a lone `#` page title never counts."""
    levels: list[int] = []
    for line in lines:
        head = _heading(line)
        if head and _is_q_heading(head[1]) or _inline_question(line) or (not line.fenced and _PLAIN_Q.match(line.text)):
            return None
        if head:
            levels.append(head[0])
    counts = {lv: levels.count(lv) for lv in set(levels)}
    if counts.get(1) == 1 and len(counts) > 1:
        del counts[1]
    return max(counts, key=lambda lv: (counts[lv], lv)) if counts else None


def parse_page(text: str, generic: bool = False) -> tuple[str, str, list[_Block]]:
    """(title, source_url, blocks in page order) for one page's text.

    `generic` (any team's FAQ, not the versioned-docs layout): a bare `Q:`/`问题：` line is a question too, and on a
    page without Q markers the headings of its most frequent level are the questions (`##` included)."""
    lines = _scan(text.lstrip("\ufeff"))
    q_level = _question_level(lines) if generic else None
    source_url = ""
    for ln in lines[:15]:
        m = _BADGE.search(ln.text)
        if m:
            source_url = m.group(1)
            break

    blocks: list[_Block] = []
    sections: list[_Section] = []
    stack: list[tuple[int, str, str]] = []  # (level, title, slug) of the enclosing headings
    used_slugs: set[str] = set()

    def unique_slug(title: str) -> str:
        """Sphinx/MyST suffix repeated ids on a page with -1, -2, ..."""
        base = slug = heading_slug(title)
        k = 1
        while slug in used_slugs:
            slug, k = f"{base}-{k}", k + 1
        used_slugs.add(slug)
        return slug

    def path() -> tuple[str, ...]:
        return tuple(t for _, t, _ in stack)

    cur: _Block | None = None
    section: _Section | None = None

    def close() -> None:
        nonlocal cur
        if cur is not None:
            blocks.append(cur)
            if section is not None:
                section.has_q = True
        cur = None

    for i, line in enumerate(lines):
        head = _heading(line)
        if head:
            level, title = head
            slug = unique_slug(title)  # every heading takes an id, even one inside an answer
            if (cur is not None and cur.level is not None and level > cur.level and not _is_q_heading(title)
                    and level != q_level):
                cur.lines.append(line.text)  # a sub-heading inside a heading question's answer
                continue
            if _is_q_heading(title) or level == q_level:
                close()
                while stack and stack[-1][0] >= level:
                    stack.pop()
                cur = _Block(clean_question(title), i, path(), slug, level=level)
                if section is not None:
                    section.has_q = True
                continue
            close()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title, slug))
            section = _Section(title, level, i, path(), slug)
            sections.append(section)
            continue
        q = _inline_question(line)
        if q is None and generic and not line.fenced and _PLAIN_Q.match(line.text):
            q = clean_question(_PLAIN_Q.match(line.text).group(1))
        if q is not None:
            close()
            anchor = stack[-1][2] if stack and stack[-1][0] > 1 else None
            cur = _Block(q, i, path(), anchor)
            if section is not None:
                section.has_q = True
            continue
        if cur is not None:
            cur.lines.append(line.text)
        elif section is not None:
            section.lines.append((i, line))
    close()

    title = next((s.title for s in sections if s.level == 1), "")
    page_has_q = bool(blocks)
    for s in [] if generic else sections:
        if s.has_q or s.level == 1:
            continue
        if page_has_q:
            blocks.extend(_numbered_cases(s))
        elif s.level >= 3 and any(ln.text.strip() for _, ln in s.lines):
            blocks.append(_Block(clean_question(s.title), s.start, s.heading_path[:-1], s.slug,
                                 [ln.text for _, ln in s.lines], level=s.level))
    blocks.sort(key=lambda b: b.start)
    return title, source_url, blocks


def _numbered_cases(section: _Section) -> list[_Block]:
    """Each top-level numbered item of a troubleshooting section is one case."""
    cases: list[_Block] = []
    cur: _Block | None = None
    for i, line in section.lines:
        m = None if line.fenced else _CASE_ITEM.match(line.text)
        if m:
            if cur is not None:
                cases.append(cur)
            cur = _Block(_case_question(m.group(2)), i, section.heading_path, section.slug, [m.group(2)])
        elif cur is not None:
            cur.lines.append(line.text)
    if cur is not None:
        cases.append(cur)
    for c in cases:  # first line stays flush left, the indented body is dedented on its own
        body = textwrap.dedent("\n".join(c.lines[1:]))
        c.lines = [c.lines[0], *body.splitlines()]
    return cases


# ---------------------------------------------------------------- page -> entries


def _unique_ids(base_ids: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for b in base_ids:
        seen[b] = seen.get(b, 0) + 1
        out.append(b if seen[b] == 1 else f"{b}-{seen[b]}")
    return out


def entries_from_text(rel: str, text: str) -> tuple[list[FaqEntry], str]:
    """Entries of one page and the page's source URL (rel is the path relative to the corpus root)."""
    info = page_info(rel)
    title, source_url, blocks = parse_page(text)
    if not source_url:
        source_url = _layout()["source_url"].format(branch=info.version, docs_path=info.docs_path)
    prefix = f"{info.version}/{info.component}/{info.category}/{info.lang}/"
    ids = _unique_ids([prefix + hash8(b.question) for b in blocks])
    entries = []
    for pos, (b, eid) in enumerate(zip(blocks, ids)):
        answer = _clean_answer(b.lines)
        path = b.heading_path if b.heading_path else ((title,) if title else ())
        url = info.url + (f"#{b.anchor}" if b.anchor else "")
        entries.append(FaqEntry(
            id=eid, question=b.question, answer=answer, lang=info.lang, version=info.version,
            component=info.component, category=info.category, page=rel, heading_path=path,
            source_url=source_url, url=url, position=pos,
        ))
    return entries, source_url


# ---------------------------------------------------------------- pairing zh <-> en

_ASCII_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.\-][A-Za-z0-9_]+)*|\d+(?:\.\d+)+|\d{2,}")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_CODE_BLOCK = re.compile(r"```.*?\n(.*?)```", re.S)
# English words that also show up in zh pages' prose and carry no signal
_STOP = {
    "the", "a", "an", "of", "to", "in", "is", "and", "or", "for", "on", "be", "with", "as", "by", "can", "if",
    "it", "this", "that", "are", "you", "when", "how", "what", "why", "do", "does", "i", "not", "use", "from",
    "q", "https", "http", "www", "html", "md", "zh-cn", "zh_cn",
    "en", "source_en", "source_zh_cn", "blob", "tree", "docs", "r1.1", "master",
}

PAIR_THRESHOLD = 0.42


@functools.lru_cache(maxsize=1)
def _stop() -> frozenset[str]:
    """_STOP and the docs layout's own pair_stopwords (its product name and sites)."""
    return frozenset(_STOP | set(_layout().get("pair_stopwords", ())))


def _tokens(text: str) -> set[str]:
    return {t.lower() for t in _ASCII_TOKEN.findall(text)} - _stop()


def _signals(e: FaqEntry, n: int) -> dict:
    text = e.question + "\n" + e.answer
    return {
        "q": _tokens(e.question),
        "all": _tokens(text),
        "code": {c.strip().lower() for c in _CODE_SPAN.findall(text)},
        "blocks": len(_CODE_BLOCK.findall(e.answer)),
        "len": len(re.sub(r"\s+", "", _CODE_BLOCK.sub("", e.answer))),
        "pos": e.position / max(n - 1, 1),
        "q_cjk": len(re.findall(r"[^\x00-\x7f]", _CODE_SPAN.sub("", e.question))),
        "q_prose": len(re.sub(r"\s+", " ", _CODE_SPAN.sub("", e.question))),
    }


def _overlap(zh: set, en: set) -> float | None:
    """Share of zh's ASCII tokens found in en (en prose has many more), blended with Jaccard."""
    if not zh:
        return None  # a zh text without any ASCII token tells nothing either way
    if not en:
        return 0.0
    common = len(zh & en)
    return 0.7 * common / min(len(zh), len(en)) + 0.3 * common / len(zh | en)


def _length_fit(zh: dict, en: dict) -> float:
    """1.0 when the answers' lengths fit a translation (a zh character ~ 2-3.5 en characters)."""
    ratio = (zh["len"] * 2.6 + 30) / (en["len"] + 30)
    return min(ratio, 1 / ratio)


def _question_length_fits(zh: dict, en: dict) -> bool:
    """An English rendering of a Chinese question is longer in characters (median ~4.4x on this corpus,
    never below 2x for true twins); far shorter means a different question in the same slot."""
    if zh["q_cjk"] < 8:
        return True
    return (en["q_prose"] + 5) / (zh["q_cjk"] + 2) >= 1.7


def similarity(zh: dict, en: dict) -> float:
    """0..1 likelihood that a zh and an en entry are translations, from language-neutral signals only.

    0.0 when the texts share no comparable signal (no ASCII token, code span or code block on the zh side):
    such entries are only paired by `_fill_gaps`, from their place between two confident pairs.
    """
    if not _question_length_fits(zh, en):
        return 0.0
    parts: list[tuple[float, float]] = []  # (weight, score)
    for key, w in (("all", 3.0), ("code", 2.0), ("q", 1.5)):
        s = _overlap(zh[key], en[key])
        if s is not None:
            parts.append((w, s))
    if zh["blocks"] or en["blocks"]:
        parts.append((1.0, min(zh["blocks"], en["blocks"]) / max(zh["blocks"], en["blocks"])))
    if not parts:
        return 0.0
    parts.append((1.0, max(0.0, 1.0 - 3 * abs(zh["pos"] - en["pos"]))))
    parts.append((1.0, _length_fit(zh, en)))
    return sum(w * s for w, s in parts) / sum(w for w, _ in parts)


def _plausible_twins(zh: dict, en: dict) -> bool:
    """Weak check for a pair placed by position alone: lengths fit and no token evidence against it."""
    if _length_fit(zh, en) < 0.4 or not _question_length_fits(zh, en):
        return False
    overlap = _overlap(zh["all"], en["all"])
    return overlap is None or overlap > 0


Aligned = list[tuple["FaqEntry | None", "FaqEntry | None", float]]


def align(zh: list[FaqEntry], en: list[FaqEntry], threshold: float = PAIR_THRESHOLD) -> Aligned:
    """Order-preserving alignment of a page's zh and en entries; unmatched ones come back alone.

    Needleman-Wunsch with zero gap cost over pairs whose similarity clears `threshold` (each pair scores
    sim - threshold/2, so two good pairs beat one slightly better crossing pair). Entries left between two
    confident pairs are then paired by position only when both languages have the same number there.
    """
    zs = [_signals(e, len(zh)) for e in zh]
    es = [_signals(e, len(en)) for e in en]
    n, m = len(zh), len(en)
    sim = [[similarity(zs[i], es[j]) for j in range(m)] for i in range(n)]

    def gain(i: int, j: int) -> float | None:
        return sim[i][j] - threshold / 2 if sim[i][j] >= threshold else None

    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            g = gain(i, j)
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + g if g is not None else 0.0)
    anchors: list[tuple[int, int]] = []
    i = j = 0
    while i < n and j < m:
        g = gain(i, j)
        if g is not None and best[i][j] == best[i + 1][j + 1] + g:
            anchors.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    pairs = _fill_gaps(anchors, zs, es)
    pairs += _crossing_pairs(pairs, sim)
    return _merge_order(zh, en, pairs, sim)


def _crossing_pairs(pairs: list[tuple[int, int]], sim: list[list[float]], strong: float = 0.6) -> list[tuple[int, int]]:
    """Twins whose order differs between the pages: left over by the alignment, mutual best and strong."""
    left_zh = set(range(len(sim))) - {i for i, _ in pairs}
    left_en = set(range(len(sim[0]) if sim else 0)) - {j for _, j in pairs}
    extra = []
    for i in sorted(left_zh):
        if not left_en:
            break
        j = max(sorted(left_en), key=lambda j: sim[i][j])
        best_i = max(sorted(left_zh), key=lambda k: sim[k][j])
        if best_i == i and sim[i][j] >= strong:
            extra.append((i, j))
            left_en.discard(j)
    return extra


def _merge_order(zh: list[FaqEntry], en: list[FaqEntry], pairs: list[tuple[int, int]], sim: list[list[float]]) -> Aligned:
    """One list in en page order; a zh-only entry goes right after the pair that precedes it on its page."""
    zh_to_en = dict(pairs)
    rows: list[tuple[tuple, tuple[FaqEntry | None, FaqEntry | None, float]]] = []
    for j, e in enumerate(en):
        zi = next((i for i, jj in pairs if jj == j), None)
        rows.append(((j, 0, 0), (zh[zi] if zi is not None else None, e, sim[zi][j] if zi is not None else 0.0)))
    for i, z in enumerate(zh):
        if i in zh_to_en:
            continue
        prev = max((zh_to_en[k] for k in zh_to_en if k < i), default=-1)
        rows.append(((prev, 1, i), (z, None, 0.0)))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def _fill_gaps(anchors: list[tuple[int, int]], zs: list[dict], es: list[dict], max_gap: int = 3) -> list[tuple[int, int]]:
    """Pair entries between two anchors by position when both sides hold the same small number of them."""
    pairs = list(anchors)
    bounds = [(-1, -1), *anchors, (len(zs), len(es))]
    for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]):
        gap_zh, gap_en = list(range(i0 + 1, i1)), list(range(j0 + 1, j1))
        if not gap_zh or len(gap_zh) != len(gap_en) or len(gap_zh) > max_gap:
            continue
        candidate = list(zip(gap_zh, gap_en))
        if all(_plausible_twins(zs[i], es[j]) for i, j in candidate):
            pairs.extend(candidate)
    return sorted(pairs)


def build_items(entries: list[FaqEntry]) -> list[FaqItem]:
    """Pair each page's zh entries with its twin page's en entries; deterministic order."""
    by_page: dict[str, list[FaqEntry]] = {}
    for e in entries:
        by_page.setdefault(e.page, []).append(e)
    groups: dict[str, tuple[list[FaqEntry], list[FaqEntry]]] = {}
    for page, es in by_page.items():
        key = page if "/source_en/" in page else twin_page(page)
        zh, en = groups.setdefault(key, ([], []))
        (zh if es[0].lang == "zh" else en).extend(sorted(es, key=lambda e: e.position))

    items: list[FaqItem] = []
    for key in sorted(groups, key=lambda k: (page_info(k).version, k)):
        zh, en = groups[key]
        aligned = align(zh, en)
        info = page_info(key)
        prefix = f"{info.version}/{info.component}/{info.category}/"
        ids = _unique_ids([prefix + hash8((e or z).question) for z, e, _ in aligned])
        for (z, e, _), iid in zip(aligned, ids):
            langs = {lang: x for lang, x in (("zh", z), ("en", e)) if x is not None}
            items.append(FaqItem(iid, info.version, info.component, info.category, langs))
    return items


def pair_report(corpus: Corpus) -> dict[str, dict]:
    """Per page pair (keyed by the en page path, or the twin files' shared name): entries per side, pairs."""
    report: dict[str, dict] = {}
    from faqbot.sources import twin_key

    for item in corpus.items:
        any_entry = item.entry("en")
        if "/source_en/" in any_entry.page or "/source_zh_cn/" in any_entry.page:
            key = any_entry.page if any_entry.lang == "en" else twin_page(any_entry.page)
        else:  # any team's twin files (faq.zh-CN.md / faq.en-US.md, zh/ and en/): their shared name
            key = twin_key(any_entry.page)
        r = report.setdefault(key, {"zh": 0, "en": 0, "paired": 0, "unpaired_zh": [], "unpaired_en": []})
        for lang, e in item.entries.items():
            r[lang] += 1
        if item.bilingual:
            r["paired"] += 1
        else:
            lang = item.langs[0]
            r[f"unpaired_{lang}"].append(item.entries[lang].question)
    return dict(sorted(report.items()))


# ---------------------------------------------------------------- corpus


def load_corpus(root: Path | str) -> Corpus:
    """Read a corpus folder through the source layer (faqbot.sources), whatever its formats; kept here for callers."""
    from faqbot.sources import load_corpus as load

    return load(root)
