"""Which product and which version a question is about, and whether an entry fits them.

Real users ask about a companion product (a "lite" edition, a serving tool) or an add-on library in
the same words as core users, and an entry written for another product or an old version reads as a perfect match.
Such an entry may still be shown as related, but it is not asserted (Retriever.rank) unless the user's own error
string is in it. How users name the products, add-ons and versions is the corpus's own knowledge: the bundled
config's `[facet_patterns]` (corpora/*.toml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schema import FaqItem



def _patterns() -> tuple[dict[str, re.Pattern], re.Pattern | None, str, re.Pattern | None, re.Pattern | None]:
    """The bundled corpus configs' `[facet_patterns]` (corpora/*.toml), compiled: products with entries of their
    own (component -> how users name it), add-on libraries with no entries, the core component, how a question
    names the core product's version, and how an entry's question names an old (0.x/1.x) version."""
    from .corpus_config import bundled_configs

    table: dict = next((c.facet_patterns for c in bundled_configs() if c.facet_patterns), {})

    def compiled(key: str) -> re.Pattern | None:
        return re.compile(table[key], re.I) if table.get(key) else None

    products = {name: re.compile(pattern, re.I) for name, pattern in table.get("products", {}).items()}
    return products, compiled("addons"), table.get("core", ""), compiled("version"), compiled("old_entry_version")


PRODUCTS, ADDONS, CORE, _MS_VERSION, _ENTRY_OLD_VERSION = _patterns()


@dataclass(frozen=True)
class Facets:
    products: frozenset[str] = frozenset()  # PRODUCTS keys named in the question
    addons: frozenset[str] = frozenset()  # add-on libraries named in the question
    major: int | None = None  # the newest major version of the core product named (0, 1, 2...)

    def conflict(self, item: FaqItem) -> str:
        """Why `item` does not fit this question ('' when it may be asserted)."""
        if self.products and item.component not in self.products and not _names(item, self.products):
            return f"the question is about {'/'.join(sorted(self.products))}, the entry about {item.component}"
        if self.addons and not self.products and item.component == CORE:
            return f"the question is about {'/'.join(sorted(self.addons))}, the entry about the core product"
        if self.major is not None and self.major >= 2 and _old_entry(item):
            return f"the question is about version {self.major}.x, the entry about an old version"
        return ""


def _names(item: FaqItem, products: frozenset[str]) -> bool:
    """The entry's question names one of the products (a core installation entry about an add-on product)."""
    return any(PRODUCTS[p].search(e.question) for p in products for e in item.entries.values())


def _old_entry(item: FaqItem) -> bool:
    """An entry of the r1.1 documents, or one whose question names a 0.x/1.x version."""
    if item.version == "r1.1":
        return True
    return _ENTRY_OLD_VERSION is not None and any(_ENTRY_OLD_VERSION.search(e.question) for e in item.entries.values())


def detect(text: str, components: frozenset[str] | None = None) -> Facets:
    """The facets of a question; `components`: the corpus's own (a product counts only when the corpus has entries
    of it, so another FAQ that never heard of a "lite" edition is not affected by the word "lite")."""
    products = frozenset(name for name, pattern in PRODUCTS.items() if pattern.search(text)
                         and (components is None or name in components))
    addons = frozenset(m.group(1).lower() for m in ADDONS.finditer(text)) if ADDONS else frozenset()
    majors = [int(m.group(1)) for m in _MS_VERSION.finditer(text) if int(m.group(1)) <= 9] if _MS_VERSION else []
    return Facets(products, addons, max(majors) if majors else None)
