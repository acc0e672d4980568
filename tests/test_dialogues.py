"""The dialogue dev set stays a faithful measuring stick for follow-ups: labels resolve, off-topic turns are empty."""

import copy
import json
import sys
from collections import Counter
from pathlib import Path

DIALOGUES = Path(__file__).parent / "data" / "dialogues.jsonl"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from label_dialogues import label  # noqa: E402


def _rows():
    return [json.loads(line) for line in DIALOGUES.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_dialogue_label_resolves_to_an_item(corpus):
    assert label(corpus.items, copy.deepcopy(_rows())) == []


def test_stored_dialogue_gold_ids_match_the_labels(corpus):
    rows = _rows()
    fresh = copy.deepcopy(rows)
    label(corpus.items, fresh)
    stale = [(r["id"], n) for r, f in zip(rows, fresh) for n, (t, u) in enumerate(zip(r["turns"], f["turns"]), 1)
             if t["gold_ids"] != u["gold_ids"]]
    assert stale == [], "run: python scripts/label_dialogues.py"


def test_dialogues_have_the_mix_the_followup_eval_needs():
    rows = _rows()
    assert len({r["id"] for r in rows}) == len(rows)
    kinds = Counter(r["kind"] for r in rows)
    assert all(kinds[k] >= 15 for k in ("elliptic", "switch", "offtopic")) and kinds["three_turn"] >= 10
    langs = Counter(r["lang"] for r in rows)
    assert min(langs["zh"], langs["en"]) >= 0.4 * len(rows)
    for r in rows:
        assert len(r["turns"]) == (3 if r["kind"] == "three_turn" else 2), r["id"]
        assert r["turns"][0]["gold_ids"], f"{r['id']}: the first turn sets a topic, so it must be in scope"
        if r["kind"] == "offtopic":
            assert r["turns"][-1]["gold_ids"] == [], r["id"]
        if r["kind"] in ("elliptic", "switch"):
            assert r["turns"][-1]["gold_ids"], r["id"]


def test_offtopic_turns_say_what_is_closest_and_why():
    for r in _rows():
        for t in r["turns"]:
            if not t["gold"]:
                assert t["near"] and t["why"], (r["id"], t["q"])
