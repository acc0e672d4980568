"""Plain data types passed between the stages (corpus -> embed -> index -> search -> answer).

Kept free of behaviour and heavy imports so every stage (and the UI) can depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LANGS = ("zh", "en")


@dataclass(frozen=True)
class FaqEntry:
    """One question and its answer, in one language, as read from one page."""

    id: str  # stable: "<version>/<component>/<category>/<lang>/<hash8>"
    question: str
    answer: str  # markdown, code blocks / lists / links / images intact
    lang: str  # "zh" | "en"
    version: str  # "r1.1" | "master"
    component: str  # the corpus's component facet (its config's `facets.component`), else its name
    category: str  # the page, e.g. "installation"
    page: str  # path of the page relative to the corpus root
    heading_path: tuple[str, ...] = ()
    source_url: str = ""  # the page's "View Source" link on gitee
    url: str = ""  # rendered page on the docs site, with the entry's anchor when derivable
    position: int = 0  # order of the entry on its page


@dataclass(frozen=True)
class FaqItem:
    """One FAQ entry in one or both languages (zh/en twins paired)."""

    id: str  # stable: "<version>/<component>/<category>/<hash8>"
    version: str
    component: str
    category: str
    entries: dict[str, FaqEntry] = field(default_factory=dict)  # lang -> entry

    @property
    def langs(self) -> tuple[str, ...]:
        return tuple(lang for lang in LANGS if lang in self.entries)

    @property
    def bilingual(self) -> bool:
        return len(self.entries) == 2

    def entry(self, lang: str) -> FaqEntry:
        """The entry in `lang`, or in the other language when this item has only that one."""
        if lang in self.entries:
            return self.entries[lang]
        return next(iter(self.entries[x] for x in LANGS if x in self.entries))


@dataclass(frozen=True)
class Problem:
    """Something wrong with one corpus file; reported, never fatal for the rest."""

    path: str
    message: str


@dataclass
class Corpus:
    """The result of reading a corpus folder."""

    root: str
    files: list[str] = field(default_factory=list)  # pages read (relative paths)
    name: str = ""  # the corpus config's name (faqbot.toml, a bundled config, or the folder's name)
    entries: list[FaqEntry] = field(default_factory=list)
    items: list[FaqItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # other wordings given with the entries themselves (a table's `alternates`): (item id, lang, question)
    alternates: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Hit:
    """One ranked item for a query, with the language its answer is shown in."""

    item: FaqItem
    score: float  # final ranking score, higher is better (cosine-like, ~0..1)
    lang: str  # language of the text shown (the query's, or the other one as a fallback)

    @property
    def entry(self) -> FaqEntry:
        return self.item.entry(self.lang)

    @property
    def fallback(self) -> bool:
        """True when the item has no text in the language the query was asked in."""
        return self.entry.lang != self.lang

    def to_dict(self) -> dict:
        e = self.entry
        return {
            "id": self.item.id,
            "question": e.question,
            "questions": {lang: (self.item.entries[lang].question if lang in self.item.entries else None) for lang in LANGS},
            "answer": e.answer,
            "url": e.url,
            "source_url": e.source_url,
            "version": self.item.version,
            "component": self.item.component,
            "score": round(float(self.score), 4),
        }


@dataclass
class SearchResult:
    """What the bot found for one question. `to_dict` is the `faqbot ask --json` contract."""

    query: str
    lang: str  # "zh" | "en": language detected for the query
    in_scope: bool  # False: the FAQ has no answer; hits are then only suggestions
    hits: list[Hit] = field(default_factory=list)
    message: str = ""  # a note for the user (empty question, truncated paste, ...)
    confidence: float = 0.0  # calibrated probability (0..1) that hits[0] answers the question (calibration.py)
    match: str = ""  # "answer": hits[0] answers; "related": may help, not sure; "none": not covered ("" = from in_scope)

    def __post_init__(self) -> None:
        if not self.match:
            self.match = ("answer" if self.hits else "related") if self.in_scope else "none"

    def to_dict(self) -> dict:
        out = {
            "query": self.query,
            "lang": self.lang,
            "match": self.match,
            "in_scope": self.in_scope,
            "confidence": self.confidence,
            "answers": [h.to_dict() for h in self.hits],
        }
        if self.message:
            out["message"] = self.message
        return out
