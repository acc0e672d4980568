"""The source layer: every corpus is read here, one loader per file format behind one registry.

    markdown (.md, .markdown)   the bundled docs layout (corpus.py), or any team's FAQ page (markdown.py)
    .csv .tsv .jsonl .json      question/answer tables (tables.py)
    .xlsx                       the same through openpyxl (optional extra `faqbot[xlsx]`)

Loaders return Records; `assemble` detects each entry's language from its text (lang.py), gives ids and
links (the corpus config's templates), and pairs zh/en twins: by an explicit `id`, by twin file names
(`faq.zh-CN.md`/`faq.en-US.md`, `*.zh.md`/`*.en.md`, `zh/` and `en/` folders), or by the docs layout's own rule (corpus.build_items).
A bad file or row is reported with file:line in `Corpus.problems` and skipped; the rest is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from faqbot import corpus as docs_pages
from faqbot.corpus import _length_fit, _signals, _unique_ids, align, hash8
from faqbot.corpus_config import CorpusConfig, CorpusConfigError, load_corpus_config
from faqbot.schema import Corpus, FaqEntry, FaqItem, Problem
from faqbot.sources.lang import detect_lang, hint_lang, path_hint
from faqbot.sources.markdown import load_markdown
from faqbot.sources.record import Record, bad
from faqbot.sources.tables import load_delimited, load_json, load_jsonl, load_xlsx

Loader = Callable[[Path, str, "str | None"], "tuple[list[Record], list[Problem]]"]

LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".csv": load_delimited,
    ".tsv": load_delimited,
    ".jsonl": load_jsonl,
    ".json": load_json,
    ".xlsx": load_xlsx,
}
SKIPPED_NAMES = {"readme.md", "alternates.jsonl", "license.md", "changelog.md", "source.txt"}
DOCS_LAYOUT = "versioned-docs"  # a config with this layout is read by corpus.py's parser


def register(suffix: str, loader: Loader) -> None:
    """Read files ending in `suffix` with `loader` (path, relative path, language hint) -> (records, problems)."""
    LOADERS[suffix.lower()] = loader


def corpus_files(root: Path) -> list[Path]:
    """Every file a loader reads, in a stable order (hidden folders and the project's own files skipped)."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if (p.suffix.lower() in LOADERS and p.is_file() and p.name.lower() not in SKIPPED_NAMES
                and not any(part.startswith(".") for part in rel.parts)):
            out.append(p)
    return out


def load_corpus(root: Path | str, config: CorpusConfig | None = None) -> Corpus:
    """Read every FAQ file under `root` (a folder, or one file); problems are recorded, never raised."""
    root = Path(root)
    corpus = Corpus(root=str(root))
    if not root.exists():
        corpus.problems.append(Problem(str(root), f"corpus folder {root} does not exist; "
                                       "give an existing folder with --corpus or FAQBOT_CORPUS"))
        return corpus
    if root.is_file():
        files, base = [root], root.parent
    else:
        files, base = corpus_files(root), root
    if config is None:
        try:
            config = load_corpus_config(base)
        except CorpusConfigError as exc:
            corpus.problems.append(Problem(str(base), f"{exc}; the defaults were used"))
            config = CorpusConfig(name=base.resolve().name or "faq")
    corpus.name = config.name
    if not files:
        corpus.problems.append(Problem(str(root), f"no *.md pages found under {root} (nor .csv, .tsv, .jsonl, "
                                       ".json or .xlsx files); point --corpus / FAQBOT_CORPUS at the folder holding them"))
        return corpus
    if config.layout == DOCS_LAYOUT:
        _load_docs_pages(corpus, base, [root] if root.is_file() else sorted(p for p in base.rglob("*.md") if p.is_file()))
        return corpus
    records: list[Record] = []
    for path in files:
        rel = path.relative_to(base).as_posix()
        try:
            got, problems = LOADERS[path.suffix.lower()](path, rel, path_hint(rel))
        except UnicodeDecodeError as exc:
            corpus.problems.append(bad(rel, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                                                  "re-save it as UTF-8"))
            continue
        except OSError as exc:
            corpus.problems.append(bad(rel, None, f"cannot read it: {exc.strerror or exc}; check its permissions"))
            continue
        corpus.problems.extend(problems)
        if not got:
            if not problems:
                corpus.problems.append(bad(rel, None, "no FAQ entries recognised (expected question headings, "
                                                      "'Q:'/'问题：' questions, or question/answer columns); skipped"))
            continue
        corpus.files.append(rel)
        records.extend(got)
    corpus.entries, corpus.items, corpus.alternates = assemble(records, config, corpus.problems)
    return corpus


def _load_docs_pages(corpus: Corpus, root: Path, files: list[Path]) -> None:
    """The bundled docs pages through their own parser and pairing rule (unchanged, corpus.py)."""
    for path in files:
        rel = path.relative_to(root).as_posix()
        if rel.lower() == "readme.md":
            continue
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            corpus.problems.append(Problem(rel, f"{rel} is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                                           "re-save it as UTF-8"))
            continue
        except OSError as exc:
            corpus.problems.append(Problem(rel, f"cannot read {rel}: {exc.strerror or exc}; check its permissions"))
            continue
        entries, _ = docs_pages.entries_from_text(rel, text)
        if not entries:
            corpus.problems.append(Problem(rel, f"{rel}: no FAQ entries recognised (expected 'Q:' questions, "
                                           "'## Q:' headings or numbered cases); the page was skipped"))
            continue
        corpus.files.append(rel)
        corpus.entries.extend(entries)
    corpus.items = docs_pages.build_items(corpus.entries)


# ---------------------------------------------------------------- records -> entries -> items

_LANG_BIT = re.compile(r"\.(zh|en|zh[-_](?:cn|hans|tw|hant)|en[-_](?:us|gb))(?=\.[^.]+$)", re.I)
_LANG_DIRS = {"zh", "en", "zh-cn", "zh_cn", "en-us", "en_us", "cn", "source_zh_cn", "source_en"}


def twin_key(rel: str) -> str:
    """The page with its language marks removed: twin files share it (faq.zh-CN.md ~ faq.en-US.md, zh/a.md ~ en/a.md)."""
    parts = rel.split("/")
    parts[-1] = _LANG_BIT.sub("", parts[-1])
    return "/".join("*" if p.lower() in _LANG_DIRS else p for p in parts)


def _stem(rel: str) -> str:
    name = _LANG_BIT.sub("", rel.rsplit("/", 1)[-1])
    return name.rsplit(".", 1)[0]


def _entry(r: Record, lang: str, eid: str, config: CorpusConfig) -> FaqEntry:
    version = r.version or config.version
    component = r.component or config.name
    category = r.category or _stem(r.page)
    fields = {"page": r.page, "page_html": re.sub(r"\.(md|markdown)$", ".html", r.page), "stem": _stem(r.page),
              "anchor": r.anchor, "lang": lang, "id": r.id or eid, "version": version, "component": component,
              "category": category}
    return FaqEntry(
        id=eid, question=r.question, answer=r.answer, lang=lang, version=version, component=component,
        category=category, page=r.page, heading_path=r.heading_path,
        source_url=r.source_url or config.link(config.source_url, **fields),
        url=r.url or config.link(config.page_url, **fields), position=r.position,
    )


def pair_twin_pages(zh: list[FaqEntry], en: list[FaqEntry], max_gap: int = 3) -> list[tuple[FaqEntry | None, FaqEntry | None]]:
    """zh/en entries of twin files: corpus.align, then leftovers placed alike between two pairs.

    Twin files are translations of each other by their names, so an entry left alone between the same two
    pairs on both sides (as many on each side, at most `max_gap`) is its twin when the answers' lengths fit;
    corpus.align needs more (a question-length check tuned on the docs pages) and leaves such pairs apart."""
    rows = [(z, e) for z, e, _ in align(zh, en)]
    zi = {id(x): i for i, x in enumerate(zh)}
    ei = {id(x): i for i, x in enumerate(en)}
    anchors = sorted((zi[id(z)], ei[id(e)]) for z, e in rows if z is not None and e is not None)
    extra: list[tuple[int, int]] = []
    bounds = [(-1, -1), *anchors, (len(zh), len(en))]
    for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]):
        gz, ge = list(range(i0 + 1, i1)), list(range(j0 + 1, j1))
        if gz and len(gz) == len(ge) <= max_gap:
            cand = list(zip(gz, ge))
            if all(_length_fit(_signals(zh[i], len(zh)), _signals(en[j], len(en))) >= 0.3 for i, j in cand):
                extra.extend(cand)
    if not extra:
        return rows
    paired = {(zh[i], en[j]) for i, j in extra}
    taken = {id(x) for pair in paired for x in pair}
    out = [(z, e) for z, e in rows if id(z) not in taken and id(e) not in taken]
    out += paired
    z_to_e = {zi[id(z)]: ei[id(e)] for z, e in out if z is not None and e is not None}

    def place(row) -> tuple[float, int]:  # en page order; a zh-only entry right after the pair before it
        z, e = row
        if e is not None:
            return (ei[id(e)], 0)
        return (max((j for i, j in z_to_e.items() if i < zi[id(z)]), default=-1) + 0.5, zi[id(z)])

    return sorted(out, key=place)


def assemble(records: list[Record], config: CorpusConfig, problems: list[Problem]
             ) -> tuple[list[FaqEntry], list[FaqItem], list[tuple[str, str, str]]]:
    """Entries (language from the text), items (twins paired) and the rows' alternates (item id, lang, text)."""
    langs = []
    for r in records:
        hint = r.lang_hint
        # an explicit `lang` cell is trusted unless it names neither language; a path is only a hint
        lang = hint_lang(hint) if r.explicit_lang and hint_lang(hint) else detect_lang(r.question, r.answer, hint)
        langs.append(lang)
    base = [f"{r.category or _stem(r.page)}/{lang}/{r.id or hash8(r.question)}" for r, lang in zip(records, langs)]
    entries = [_entry(r, lang, eid, config) for r, lang, eid in zip(records, langs, _unique_ids(base))]

    groups: list[tuple[str, list[int]]] = []  # (item id base, record indexes)
    by_id: dict[str, list[int]] = {}
    by_twin: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if r.id:
            by_id.setdefault(r.id, []).append(i)
        else:
            by_twin.setdefault(twin_key(r.page), []).append(i)
    for rid, idx in by_id.items():
        seen: dict[str, int] = {}
        for i in idx:
            if entries[i].lang in seen:
                problems.append(bad(records[i].page, records[i].line,
                                    f"id {rid!r} already has a {entries[i].lang} entry (line {records[seen[entries[i].lang]].line}); "
                                    "this one is kept as its own entry: give it another id"))
                groups.append((f"{rid}-{records[i].line}", [i]))
            else:
                seen[entries[i].lang] = i
        groups.append((rid, list(seen.values())))
    for key, idx in by_twin.items():
        zh = [entries[i] for i in idx if entries[i].lang == "zh"]
        en = [entries[i] for i in idx if entries[i].lang == "en"]
        pages = {records[i].page for i in idx}
        pos = {id(entries[i]): i for i in idx}
        if len(pages) > 1 and zh and en:
            pairs = pair_twin_pages(zh, en)
        else:
            pairs = [(entries[i], None) for i in idx]
        for a, b in pairs:
            members = [pos[id(x)] for x in (a, b) if x is not None]
            first = records[members[0]]
            groups.append((f"{first.category or _stem(first.page)}/{hash8(entries[members[-1]].question)}", members))

    items: list[FaqItem] = []
    alternates: list[tuple[str, str, str]] = []
    for iid, (_, members) in zip(_unique_ids([g for g, _ in groups]), groups):
        es = {entries[i].lang: entries[i] for i in members}
        e0 = entries[members[0]]
        items.append(FaqItem(iid, e0.version, e0.component, e0.category, es))
        for i in members:
            alternates += [(iid, entries[i].lang, a) for a in records[i].alternates]
    return entries, items, alternates


def pair_report(corpus: Corpus) -> dict[str, dict]:
    """Per page pair (keyed by the en page path, or the twin files' shared name): entries per side, pairs."""
    report: dict[str, dict] = {}
    for item in corpus.items:
        any_entry = item.entry("en")
        if "/source_en/" in any_entry.page or "/source_zh_cn/" in any_entry.page:
            key = any_entry.page if any_entry.lang == "en" else docs_pages.twin_page(any_entry.page)
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
