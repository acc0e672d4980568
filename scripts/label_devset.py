"""Write item ids (`gold_ids`) into the dev set from its human labels (page + FAQ question).

Run after a parser change that alters ids: `python scripts/label_devset.py`. It never changes `q` or `gold`.
"""

import json
import sys
from pathlib import Path

from faqbot.config import settings_from_env
from faqbot.corpus import load_corpus
from faqbot.devset import label_devset

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests" / "data" / "devset.jsonl"
rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
unresolved = label_devset(load_corpus(settings_from_env().corpus()).items, rows)
path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
print(f"labelled {len(rows)} questions; unresolved labels: {len(unresolved)}")
for u in unresolved:
    print("  unresolved:", u)
sys.exit(1 if unresolved else 0)
