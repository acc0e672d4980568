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


def test_every_label_of_the_harder_dev_files_resolves_and_is_stored(corpus):
    from faqbot.devset import DATA_DIR, DEV_FILES

    for name in DEV_FILES[1:]:
        rows = [json.loads(line) for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines() if line.strip()]
        fresh = copy.deepcopy(rows)
        assert label_devset(corpus.items, fresh) == [], name
        assert [r["gold_ids"] for r in rows] == [f["gold_ids"] for f in fresh], f"run: python scripts/label_devset.py tests/data/{name}"
        ids = {it.id for it in corpus.items}
        assert all(r["near"] in ids for r in rows if not r["gold_ids"] and r.get("near")), name


def test_split_keeps_each_faq_page_on_one_side_and_is_balanced():
    from faqbot.devset import assign_splits, load_dev_data, split_devset

    qs = load_dev_data()
    sides = assign_splits(qs)
    split = split_devset(qs)
    assert len(split["tune"]) + len(split["heldout"]) == len(qs)
    pages = {side: {q.page for q in split[side] if not q.page.startswith("off-topic:")} for side in split}
    assert not (pages["tune"] & pages["heldout"])  # no page contributes to both
    assert abs(len(split["tune"]) - len(split["heldout"])) <= 0.1 * len(qs)
    assert all(sides[q.page] in ("tune", "heldout") for q in qs)
