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
    repo: str = ""  # real questions: the owner/name of the issue tracker it was asked on (the split unit)
    url: str = ""  # real questions: the issue it was quoted from

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

    def off_topic(page: str) -> str | None:
        return SPLITS[int(hashlib.sha1(page.encode("utf-8")).hexdigest(), 16) % 2] if page.startswith("off-topic:") else None

    return _deal(Counter(q.page for q in questions), off_topic)


def _deal(sizes, fixed=lambda group: None) -> dict[str, str]:
    """Groups dealt largest first (ties by name) to the side with fewer questions so far (ties to tune), unless
    `fixed(group)` names its side; every group's questions count towards its side."""
    out: dict[str, str] = {}
    count = {side: 0 for side in SPLITS}
    for group, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        side = fixed(group) or min(SPLITS, key=lambda s: (count[s], s == "heldout"))
        out[group] = side
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


# ---------------------------------------------------------------- real users' questions (issue 19)
# Quoted from public issue trackers, labelled with `expect`: substrings of the right entry's zh/en question ([] when
# no entry answers). Kept outside the project (../shared/real-questions/); FAQBOT_REAL_QUESTIONS points elsewhere.
REAL_QUESTIONS_ENV = "FAQBOT_REAL_QUESTIONS"
REAL_QUESTIONS_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "real-questions" / "real_questions.jsonl"
REAL_EXTRA_FILE = DATA_DIR / "real_questions_extra.jsonl"  # collected by this project (even issue numbers only)


class RealQuestionsError(Exception):
    """The real-question file is missing or unreadable (one line saying what to do)."""


def real_questions_paths(env: dict[str, str] | None = None) -> list[Path]:
    """The shared file (or FAQBOT_REAL_QUESTIONS, os.pathsep-separated) and the project's own extra file."""
    import os

    env = os.environ if env is None else env
    given = env.get(REAL_QUESTIONS_ENV, "").strip()
    paths = [Path(p) for p in given.split(os.pathsep) if p] if given else [REAL_QUESTIONS_FILE]
    if not given and REAL_EXTRA_FILE.is_file():
        paths.append(REAL_EXTRA_FILE)
    return paths


def source_repo(url: str) -> str:
    """owner/name of a GitHub (or Gitee) issue URL; the URL itself when it has no such part."""
    parts = url.split("://", 1)[-1].split("/")
    return "/".join(parts[1:3]).lower() if len(parts) >= 3 else url


def resolve_expect(items: list[FaqItem], expect: list[str]) -> list[str]:
    """Item ids whose zh or en question contains any `expect` substring (markup-insensitive), every version."""
    wants = [_norm(e) for e in expect if _norm(e)]
    return [it.id for it in items if any(w in _norm(e.question) for e in it.entries.values() for w in wants)]


def load_real_questions(items: list[FaqItem], paths: list[Path] | None = None) -> list[DevQuestion]:
    """Real questions as dev questions (kind "real", gold resolved against `items`).

    Raises RealQuestionsError when a file is missing or unreadable, or an `expect` label matches no entry."""
    out: list[DevQuestion] = []
    for path in paths or real_questions_paths():
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise RealQuestionsError(f"cannot read the real questions {path} ({type(exc).__name__}); put the file "
                                     f"there or point {REAL_QUESTIONS_ENV} at it") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                query, source, expect = row["query"], row["source"], list(row.get("expect") or [])
            except (ValueError, KeyError, TypeError) as exc:
                raise RealQuestionsError(f"{path}:{n} is not a real-question row ({type(exc).__name__}); "
                                         'give {"query": ..., "source": URL, "expect": [...]}') from None
            gold = resolve_expect(items, expect)
            if expect and not gold:
                raise RealQuestionsError(f"{path}:{n}: no FAQ entry's question contains any of {expect}; fix the label")
            out.append(DevQuestion(query, row.get("lang", ""), "real", tuple(gold), "", Path(path).name,
                                   source_repo(source), source))
    return out


def assign_real_splits(questions: list[DevQuestion]) -> dict[str, str]:
    """Repository -> "tune" | "heldout": every question of one issue tracker goes to one side (never split by line).

    Repositories are dealt largest first to the side with fewer questions (ties to tune), as FAQ pages are in
    assign_splits: deterministic and balanced in size. The repositories of the first file (the shared one) are dealt
    among themselves first and keep that side whatever is added later; a later file's new repositories are then
    dealt around them. So adding questions never moves a question the constants were tuned on into the held-out
    side, or the reverse."""
    from collections import Counter

    first = questions[0].source if questions else ""
    base = _deal(Counter(q.repo for q in questions if q.source == first))
    return _deal(Counter(q.repo for q in questions), fixed=base.get)


def split_real(questions: list[DevQuestion]) -> dict[str, list[DevQuestion]]:
    sides = assign_real_splits(questions)
    return {s: [q for q in questions if sides[q.repo] == s] for s in SPLITS}
