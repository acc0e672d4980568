"""Measure the choices in search.RankingParams on the dev set: lexical fusion weight and the no-answer rule.

    python scripts/calibrate.py            # prints the tables quoted in docs/retrieval.md

The dense and BM25 scores are computed once per question; each setting is then replayed from them.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from faqbot.config import Settings
from faqbot.devset import load_devset
from faqbot.search import Retriever, _lexical_bonus, clean_query
from faqbot.text import to_simplified

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devset", type=Path, default=ROOT / "tests" / "data" / "devset.jsonl")
    args = ap.parse_args()
    r = Retriever.from_settings(Settings(), rebuild=False)
    qs = load_devset(args.devset)
    mask = r.filter_mask("latest")
    pos = {it.id: i for i, it in enumerate(r.items)}
    rows = []
    for dq in qs:
        _, dense, lex, oov = r.score_items(to_simplified(clean_query(dq.q)[0]))
        rows.append((dq, dense, lex, oov, {pos[g] for g in dq.gold_ids}))
    inscope = np.array([bool(g) for *_, g in rows])

    print("## Lexical fusion weight (final = dense + w * BM25/best, floor 2.0)")
    print(f"{'w':>6} {'R@1':>6} {'R@3':>6}")
    for w in (0.0, 0.02, 0.05, 0.08, 0.10, 0.15, 0.20, 0.30):
        r1 = r3 = 0
        for dq, dense, lex, oov, gold in rows:
            if not gold:
                continue
            f = np.where(mask, dense + w * _lexical_bonus(lex, 2.0), -np.inf)
            top3 = np.argsort(-f)[:3]
            r1 += top3[0] in gold
            r3 += bool(gold & set(top3.tolist()))
        n = inscope.sum()
        print(f"{w:>6.2f} {r1 / n:>6.3f} {r3 / n:>6.3f}")

    p = r.params
    feats = {"top dense": [], "top final": [], "confidence": []}
    for dq, dense, lex, oov, gold in rows:
        f = np.where(mask, dense + p.lexical_weight * _lexical_bonus(lex, p.lexical_floor), -np.inf)
        top = float(f.max())
        feats["top dense"].append(float(np.where(mask, dense, -np.inf).max()))
        feats["top final"].append(top)
        feats["confidence"].append(r.confidence(top, lex, oov, p))
    print("\n## No-answer signals: off-topic rejected when the threshold wrongly rejects 2% / 3% / 5% of in-scope")
    for name, values in feats.items():
        s = np.array(values)
        auc = float((s[inscope][:, None] > s[~inscope][None, :]).mean())
        cells = []
        for wr in (0.02, 0.03, 0.05):
            th = np.quantile(s[inscope], wr)
            cells.append(f"{(s[~inscope] < th).mean():.3f}")
        print(f"{name:<11} AUC {auc:.4f}   " + "  ".join(cells))
    s = np.array(feats["confidence"])
    print(f"\n## At min_confidence = {p.min_confidence}")
    print(f"off-topic rejected {(s[~inscope] < p.min_confidence).mean():.3f} of {(~inscope).sum()}, "
          f"in-scope wrongly rejected {(s[inscope] < p.min_confidence).mean():.3f} of {inscope.sum()}")


if __name__ == "__main__":
    main()
