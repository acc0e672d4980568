"""The dev set: user questions labelled with the FAQ entries that answer them (tests/data/devset.jsonl)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .schema import FaqItem


@dataclass(frozen=True)
class DevQuestion:
    q: str
    lang: str
    kind: str
    gold_ids: tuple[str, ...]  # empty: off-topic

    @property
    def offtopic(self) -> bool:
        return not self.gold_ids


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def resolve_gold(items: list[FaqItem], page: str, question: str, section: str | None = None) -> list[str]:
    """Item ids answering a label: the entry on `page` whose question is `question` (markup-insensitive).

    On troubleshooting pages a label may name a heading that groups several cases (the Lite page); then every
    case under that heading counts. `section` (the parent heading) tells apart headings that repeat, such as
    the Lite page's four "Failed to Build a Graph".
    """
    want = _norm(question)
    candidates = [(it, e) for it in items for e in it.entries.values() if e.page == page]
    if section:
        in_section = [(it, e) for it, e in candidates if any(_norm(section) == _norm(h) for h in e.heading_path)]
        candidates = in_section or candidates
    for it, e in candidates:
        if _norm(e.question) == want:
            return [it.id]
    for it, e in candidates:  # tolerate a label that is a prefix/substring of a long heading question
        if want and (want in _norm(e.question) or _norm(e.question) in want):
            return [it.id]
    under_heading = [it.id for it, e in candidates if any(_norm(h) == want for h in e.heading_path[1:])]
    return list(dict.fromkeys(under_heading))


def label_devset(items: list[FaqItem], rows: list[dict]) -> list[str]:
    """Add `gold_ids` (item ids) to dev rows from their page+question labels; returns unresolved labels."""
    unresolved = []
    for row in rows:
        ids = []
        for g in row.get("gold", []):
            found = resolve_gold(items, g["page"], g["question"], g.get("section"))
            if not found:
                unresolved.append(f"{g['page']}: {g['question']}")
            ids += [i for i in found if i not in ids]
        row["gold_ids"] = ids
    return unresolved


def load_devset(path: Path) -> list[DevQuestion]:
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        out.append(DevQuestion(row["q"], row.get("lang", ""), row.get("kind", ""), tuple(row.get("gold_ids", ()))))
    return out
