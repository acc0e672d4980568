"""The dev set stays a faithful measuring stick: every label resolves to a real item of the corpus."""

import copy
import json
from pathlib import Path

from faqbot.devset import label_devset, load_devset

DEVSET = Path(__file__).parent / "data" / "devset.jsonl"


def _rows():
    return [json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_dev_label_resolves_to_an_item(corpus):
    rows = copy.deepcopy(_rows())
    assert label_devset(corpus.items, rows) == []


def test_stored_gold_ids_match_the_labels(corpus):
    rows = _rows()
    fresh = copy.deepcopy(rows)
    label_devset(corpus.items, fresh)
    stale = [r["q"] for r, f in zip(rows, fresh) if r["gold_ids"] != f["gold_ids"]]
    assert stale == [], "run: python scripts/label_devset.py"


def test_devset_has_the_mix_the_eval_needs():
    qs = load_devset(DEVSET)
    in_scope = [q for q in qs if not q.offtopic]
    assert len(in_scope) >= 80 and len(qs) - len(in_scope) >= 15
    assert {q.lang for q in in_scope} == {"zh", "en"}
    kinds = {q.kind for q in in_scope}
    assert {"colloquial", "keywords", "error_paste", "cross_lingual"} <= kinds
