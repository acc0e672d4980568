"""A corpus's own settings: `faqbot.toml` in the corpus folder (every key optional; a bare folder works).

Read once where the corpus is read, then passed on: the source layer fills entry links from its templates,
the answer stage shows its not-covered text and fallback links, the front ends its name, title and examples.
The default FAQ's config ships with the project (corpora/*.toml) and applies to any folder laid out like its
pages, wherever it lives (its `detect` globs).
"""

from __future__ import annotations

import functools
import string
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILE = "faqbot.toml"
BUNDLED_DIR = Path(__file__).with_name("corpora")
# fields a link template may use (an entry's page link or source link)
LINK_FIELDS = ("page", "page_html", "stem", "anchor", "lang", "id", "version", "component", "category")


class CorpusConfigError(ValueError):
    """A faqbot.toml that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class FallbackLink:
    """A link shown with "not covered" (e.g. search the docs, open an issue); `url` may hold {query}."""

    label: dict[str, str]
    url: str

    def render(self, query: str, lang: str) -> tuple[str, str]:
        label = self.label.get(lang) or next(iter(self.label.values()), self.url)
        return label, self.url.replace("{query}", urllib.parse.quote(query.strip()))


@dataclass(frozen=True)
class CorpusConfig:
    name: str = "faq"  # short id (default: the corpus folder's name)
    title: str = ""  # shown in the chat header and page title (default: "<name> FAQ")
    banner: dict[str, str] = field(default_factory=dict)  # lang -> the chat's heading (default: "<title> bot")
    description: str = ""  # the CLI's --help line (default: "Bilingual (zh/en) FAQ bot for <title>.")
    layout: str = ""  # "" (any team's files) or "versioned-docs" (corpus.py's parser for docs pages)
    version: str = ""  # version label given to entries that carry none
    page_url: str = ""  # link template for an entry's page, e.g. "https://x.org/faq{anchor_hash}"
    source_url: str = ""  # link template for an entry's source file
    intro: dict[str, str] = field(default_factory=dict)  # lang -> one paragraph under the title
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)  # lang -> example questions
    not_covered: dict[str, str] = field(default_factory=dict)  # lang -> "not covered" text
    topics: dict[str, str] = field(default_factory=dict)  # lang -> what the FAQ covers, shown when nothing is close
    empty: dict[str, str] = field(default_factory=dict)  # lang -> the reply to an empty question
    fallback: tuple[FallbackLink, ...] = ()
    facets: dict[str, tuple[str, ...]] = field(default_factory=dict)  # facet name -> values
    detect: tuple[str, ...] = ()  # globs: a folder holding any of them uses this config (bundled configs)
    products: tuple[str, ...] = ()  # product names a pasted environment line or API path starts with (paste.py)
    docs: dict = field(default_factory=dict)  # the "versioned-docs" layout's own settings (corpus.py)
    facet_patterns: dict = field(default_factory=dict)  # how users name products, add-ons, versions (facets.py)
    path: str = ""  # the file it was read from ("" = defaults)

    @property
    def display_title(self) -> str:
        return self.title or f"{self.name} FAQ"

    @property
    def page_title(self) -> str:
        """The browser tab's title: the English heading, else "<title> bot"."""
        return self.banner.get("en") or next(iter(self.banner.values()), "") or f"{self.display_title} bot"

    @property
    def heading(self) -> str:
        """The chat's heading: each language's banner once, joined by " · "."""
        return " · ".join(dict.fromkeys(v for v in self.banner.values() if v)) or self.page_title

    @property
    def help_text(self) -> str:
        return self.description or f"Bilingual (zh/en) FAQ bot for {self.display_title}."

    def example_questions(self) -> list[str]:
        """The example questions, the languages interleaved (zh, en, zh, en, ...)."""
        lists = [list(qs) for qs in (self.examples.get("zh", ()), self.examples.get("en", ()))]
        lists += [list(qs) for lang, qs in self.examples.items() if lang not in ("zh", "en")]
        out = []
        for i in range(max((len(qs) for qs in lists), default=0)):
            out += [qs[i] for qs in lists if i < len(qs)]
        return out

    def text(self, table: dict[str, str], lang: str) -> str:
        """`table`'s text in `lang`, else the other language's, else ""."""
        return table.get(lang) or next(iter(table.values()), "")

    def fallback_links(self, query: str, lang: str) -> list[tuple[str, str]]:
        """(label, url) pairs for "not covered", the query filled into each url."""
        return [f.render(query, lang) for f in self.fallback]

    def link(self, template: str, **fields: str) -> str:
        """`template` with an entry's fields filled in; "" when there is no template.

        {anchor_hash} is "#<anchor>" when the entry has an anchor and "" otherwise."""
        if not template:
            return ""
        values = {k: str(fields.get(k, "") or "") for k in LINK_FIELDS}
        values["anchor_hash"] = f"#{values['anchor']}" if values["anchor"] else ""
        return template.format_map(values)


def _langs(data, key: str, where: str) -> dict[str, str]:
    value = data.get(key, {})
    if isinstance(value, str):
        return {"en": value, "zh": value}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CorpusConfigError(f"{where}: `{key}` must be a text or a table like {{ en = \"...\", zh = \"...\" }}")
    return dict(value)


def _template(data, key: str, where: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise CorpusConfigError(f"{where}: `{key}` must be a text")
    names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    unknown = names - set(LINK_FIELDS) - {"anchor_hash"}
    if unknown:
        raise CorpusConfigError(f"{where}: `{key}` uses {{{sorted(unknown)[0]}}}; a link template may use "
                                + ", ".join("{" + f + "}" for f in (*LINK_FIELDS, "anchor_hash")))
    return value


def parse_config(data: dict, where: str, default_name: str = "faq") -> CorpusConfig:
    """A CorpusConfig from a parsed TOML table; CorpusConfigError names the first bad key."""
    examples = data.get("examples", {})
    if not isinstance(examples, dict) or not all(isinstance(v, list) and all(isinstance(q, str) for q in v)
                                                  for v in examples.values()):
        raise CorpusConfigError(f'{where}: `examples` must be a table like {{ en = ["...", "..."], zh = ["..."] }}')
    fallback = []
    for i, link in enumerate(data.get("fallback", []), 1):
        if not isinstance(link, dict) or not isinstance(link.get("url"), str):
            raise CorpusConfigError(f"{where}: [[fallback]] number {i} needs a `url` text")
        fallback.append(FallbackLink(_langs(link, "label", where) or {"en": link["url"]}, link["url"]))
    facets = data.get("facets", {})
    if not isinstance(facets, dict) or not all(isinstance(v, list) for v in facets.values()):
        raise CorpusConfigError(f"{where}: `facets` must be a table of lists, e.g. version = [\"2.0\", \"1.0\"]")
    detect = (data.get("detect") or {}).get("any", [])
    products = data.get("products", [])
    if not isinstance(products, list) or not all(isinstance(x, str) for x in products):
        raise CorpusConfigError(f'{where}: `products` must be a list of names, e.g. ["myproduct"]')
    docs = data.get("docs", {})
    if not isinstance(docs, dict):
        raise CorpusConfigError(f"{where}: `docs` must be a table")
    facet_patterns = data.get("facet_patterns", {})
    if not isinstance(facet_patterns, dict) or not isinstance(facet_patterns.get("products", {}), dict):
        raise CorpusConfigError(f"{where}: `facet_patterns` must be a table (with a `products` table)")
    for key in ("name", "title", "layout", "version", "description"):
        if not isinstance(data.get(key, ""), str):
            raise CorpusConfigError(f"{where}: `{key}` must be a text")
    return CorpusConfig(
        name=data.get("name") or default_name,
        title=data.get("title", ""),
        banner=_langs(data, "banner", where),
        description=data.get("description", ""),
        layout=data.get("layout", ""),
        version=data.get("version", ""),
        page_url=_template(data, "page_url", where),
        source_url=_template(data, "source_url", where),
        intro=_langs(data, "intro", where),
        examples={lang: tuple(qs) for lang, qs in examples.items()},
        not_covered=_langs(data, "not_covered", where),
        topics=_langs(data, "topics", where),
        empty=_langs(data, "empty", where),
        fallback=tuple(fallback),
        facets={k: tuple(str(x) for x in v) for k, v in facets.items()},
        detect=tuple(detect),
        products=tuple(products),
        docs=dict(docs),
        facet_patterns=dict(facet_patterns),
        path=where,
    )


def read_config(path: Path, default_name: str = "faq") -> CorpusConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise CorpusConfigError(f"{path}: not valid TOML ({exc}); fix it or delete the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusConfigError(f"cannot read {path} ({exc}); re-save it as UTF-8") from None
    return parse_config(data, str(path), default_name)


def bundled_configs() -> list[CorpusConfig]:
    return list(_bundled(BUNDLED_DIR))


@functools.lru_cache(maxsize=4)
def _bundled(folder: Path) -> tuple[CorpusConfig, ...]:
    """Read once per process: they ship with the package."""
    return tuple(read_config(p) for p in sorted(folder.glob("*.toml")))


def load_corpus_config(root: Path | str) -> CorpusConfig:
    """`<root>/faqbot.toml`, else the bundled config whose layout the folder has, else the defaults."""
    root = Path(root)
    default_name = root.resolve().name or "faq"
    own = root / CONFIG_FILE
    if root.is_dir() and own.is_file():
        return read_config(own, default_name)
    if root.is_dir():
        for config in bundled_configs():
            if any(next(root.glob(pattern), None) is not None for pattern in config.detect):
                return config
    return CorpusConfig(name=default_name)


def bundled_layout(layout: str) -> CorpusConfig | None:
    """The bundled config read by the parser of `layout` (e.g. corpus.py's "versioned-docs"), or None."""
    return next((c for c in bundled_configs() if c.layout == layout), None)


def bundled_products() -> tuple[str, ...]:
    """Every bundled corpus's product names (paste.py reads them as environment keys and API prefixes)."""
    return tuple(dict.fromkeys(p for c in bundled_configs() for p in c.products))
