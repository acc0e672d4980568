"""Write item ids (`gold_ids`) into every turn of the dialogue dev set from its human labels (page + FAQ question).

Run after a parser change that alters ids: `python scripts/label_dialogues.py [path]` (default
tests/data/dialogues.jsonl). It never changes `q` or `gold`; it exits 1 naming every label it could not resolve,
so a moved or renamed FAQ entry is caught instead of silently becoming an empty (off-topic) label.
"""

import json
import sys
from collections import Counter
from pathlib import Path

from faqbot.config import settings_from_env
from faqbot.corpus import load_corpus
from faqbot.devset import label_devset


def label(items, dialogues: list[dict]) -> list[str]:
    """Fill `gold_ids` of each turn in place; return the labels that resolved to no item.

    A turn is labelled like a dev-set row (faqbot.devset.label_devset); only the report names the turn."""
    unresolved = []
    for dlg in dialogues:
        for n, turn in enumerate(dlg["turns"], 1):
            unresolved += [f"{dlg['id']} turn {n}: {u}" for u in label_devset(items, [turn])]
    return unresolved


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests" / "data" / "dialogues.jsonl"
    if not path.exists():
        print(f"no such file: {path}; pass the dialogues JSONL path")
        return 2
    dialogues = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    unresolved = label(load_corpus(settings_from_env().corpus()).items, dialogues)
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dialogues), encoding="utf-8")
    kinds = Counter((d["kind"], d["lang"]) for d in dialogues)
    turns = sum(len(d["turns"]) for d in dialogues)
    print(f"labelled {len(dialogues)} dialogues ({turns} turns); unresolved labels: {len(unresolved)}")
    for kind in sorted({k for k, _ in kinds}):
        print(f"  {kind:<11} zh {kinds[(kind, 'zh')]:>3}  en {kinds[(kind, 'en')]:>3}")
    for u in unresolved:
        print("  unresolved:", u)
    return 1 if unresolved else 0


if __name__ == "__main__":
    sys.exit(main())
