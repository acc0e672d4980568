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
    gold_ids: tuple[str, ...]  # empty: the FAQ does not answer it
    near: str = ""  # for an uncovered question close to an entry: that entry's id (a "hard negative")
    source: str = ""  # the file it came from

    @property
    def offtopic(self) -> bool:
        """Not answered by the FAQ (off-topic or a near miss)."""
        return not self.gold_ids

    @property
    def hard_negative(self) -> bool:
        """An on-topic question the FAQ does not answer, close to an entry that does not answer it."""
        return not self.gold_ids and bool(self.near)

    @property
    def page(self) -> str:
        """The FAQ page the question is about (component/page, across versions); its own group when off-topic."""
        ref = self.gold_ids[0] if self.gold_ids else self.near
        return "/".join(ref.split("/")[1:3]) if ref else "off-topic:" + self.q


SPLITS = ("tune", "heldout")


def assign_splits(questions: list[DevQuestion]) -> dict[str, str]:
    """Page -> "tune" | "heldout": whole FAQ pages go to one side, so no constant is chosen on the pages it is
    judged on. Pages are dealt largest first to the smaller side (deterministic, balanced in size); off-topic
    questions are their own groups and alternate by a hash of their text."""
    import hashlib
    from collections import Counter

    sizes = Counter(q.page for q in questions)
    out: dict[str, str] = {}
    count = {"tune": 0, "heldout": 0}
    for page, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        if page.startswith("off-topic:"):
            side = SPLITS[int(hashlib.sha1(page.encode("utf-8")).hexdigest(), 16) % 2]
        else:
            side = min(SPLITS, key=lambda s: (count[s], s == "heldout"))
        out[page] = side
        count[side] += n
    return out


def split_devset(questions: list[DevQuestion]) -> dict[str, list[DevQuestion]]:
    sides = assign_splits(questions)
    return {s: [q for q in questions if sides[q.page] == s] for s in SPLITS}


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
        out.append(DevQuestion(row["q"], row.get("lang", ""), row.get("kind", ""), tuple(row.get("gold_ids", ())),
                               row.get("near", "") or "", Path(path).name))
    return out


DATA_DIR = Path(__file__).resolve().parents[2] / "tests" / "data"
DEV_FILES = ("devset.jsonl", "devset_hard_a.jsonl", "devset_hard_b.jsonl")


def load_dev_data(paths: list[Path] | None = None) -> list[DevQuestion]:
    """Every single-question dev file there is (the original set and the harder ones), in one list."""
    if paths is None:
        paths = [DATA_DIR / name for name in DEV_FILES if (DATA_DIR / name).is_file()]
    return [q for path in paths for q in load_devset(path)]
