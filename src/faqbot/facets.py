"""Which product and which version a question is about, and whether an entry fits them.

Real users ask about MindSpore Lite, Serving, MindInsight or an add-on library (mindyolo, mindocr, mindnlp...) in
the same words as core users, and an entry written for another product or an old version reads as a perfect match.
Such an entry may still be shown as related, but it is not asserted (Retriever.rank) unless the user's own error
string is in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schema import FaqItem

# products with entries of their own (FaqItem.component) and how users name them
PRODUCTS: dict[str, re.Pattern] = {
    "lite": re.compile(r"mindspore[\s_-]?lite|\blite\b|converter_lite|\bbenchmark\b.*--modelFile|\.ms\b|端侧", re.I),
    "serving": re.compile(r"mindspore[\s_-]?serving|\bserving\b", re.I),
    "mindinsight": re.compile(r"mindinsight|mind\s?converter", re.I),
    "mindarmour": re.compile(r"mindarmour|mindspore armour", re.I),
    "federated": re.compile(r"federated|联邦", re.I),
    "mindpandas": re.compile(r"mindpandas", re.I),
    "graphlearning": re.compile(r"graph\s?learning", re.I),
    "mindformers": re.compile(r"mindformers|mindspore transformers", re.I),
    "vllm_mindspore": re.compile(r"vllm", re.I),
}
# add-on libraries with no entries here: core entries rarely answer their users
ADDONS = re.compile(
    r"\b(mindyolo|mindocr|mindnlp|mindone|mindcv|mindaudio|mindsponge|mindquantum|mindearth|mindflow|mindrlhf|"
    r"mindpet|mindseg|mindsponge|mindchemistry|mindscience|mindelec|mindspore[-_]lab)\b", re.I)
CORE = "mindspore"
# "MindSpore 2.2", "mindspore=2.0.0", "mindspore-gpu 1.5.0", "MindSpore版本：2.3.0", "ms 2.4"
_MS_VERSION = re.compile(
    r"(?:mindspore|\bms)(?:[\s_-]?(?:gpu|cpu|ascend))?[\s=:：,，]*(?:版本|version)?[\s=:：]*v?(\d+)\.(\d+)", re.I)
_ENTRY_OLD_VERSION = re.compile(r"(?:mindspore\s*|版本\s*|version\s*)v?([01])\.(\d+)|\b([01])\.(\d+)\s*(?:版本|version)", re.I)


@dataclass(frozen=True)
class Facets:
    products: frozenset[str] = frozenset()  # PRODUCTS keys named in the question
    addons: frozenset[str] = frozenset()  # add-on libraries named in the question
    major: int | None = None  # the newest MindSpore major version named (0, 1, 2...)

    def conflict(self, item: FaqItem) -> str:
        """Why `item` does not fit this question ('' when it may be asserted)."""
        if self.products and item.component not in self.products and not _names(item, self.products):
            return f"the question is about {'/'.join(sorted(self.products))}, the entry about {item.component}"
        if self.addons and not self.products and item.component == CORE:
            return f"the question is about {'/'.join(sorted(self.addons))}, the entry about core MindSpore"
        if self.major is not None and self.major >= 2 and _old_entry(item):
            return f"the question is about MindSpore {self.major}.x, the entry about an old version"
        return ""


def _names(item: FaqItem, products: frozenset[str]) -> bool:
    """The entry's question names one of the products (a core installation entry about MindSpore Armour)."""
    return any(PRODUCTS[p].search(e.question) for p in products for e in item.entries.values())


def _old_entry(item: FaqItem) -> bool:
    """An entry of the r1.1 documents, or one whose question names a 0.x/1.x MindSpore version."""
    if item.version == "r1.1":
        return True
    return any(_ENTRY_OLD_VERSION.search(e.question) for e in item.entries.values())


def detect(text: str, components: frozenset[str] | None = None) -> Facets:
    """The facets of a question; `components`: the corpus's own (a product counts only when the corpus has entries
    of it, so another FAQ that never heard of MindSpore Lite is not affected by the word "lite")."""
    products = frozenset(name for name, pattern in PRODUCTS.items() if pattern.search(text)
                         and (components is None or name in components))
    addons = frozenset(m.group(1).lower() for m in ADDONS.finditer(text))
    majors = [int(m.group(1)) for m in _MS_VERSION.finditer(text) if int(m.group(1)) <= 9]
    return Facets(products, addons, max(majors) if majors else None)
