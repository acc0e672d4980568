"""How long an approved alternate question takes to become findable, end to end, on a copy of the shipped index.

    python benchmarks/alternates.py [--runs 3]

Steps timed: append the line to alternates.jsonl, apply_alternates (embed one question, rebuild BM25, atomic
save), open the folder again (every checksum verified), search with the new wording. Also the cost of opening
and verifying the shipped folder alone. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from faqbot import store
from faqbot.alternates import Alternate, append_alternates, today
from faqbot.embed import load_embedder
from faqbot.search import Retriever

REPO = Path(__file__).resolve().parents[1]
ITEM = "master/mindspore/installation/4a4da09a"  # "如何卸载MindSpore？"
WORDINGS = ["怎么把mindspore删掉", "mindspore 不想要了怎么清理干净", "get mindspore off my laptop"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    embedder = load_embedder(None)
    embedder.embed_queries(["warm up"])
    opens = []
    for _ in range(5):
        t = time.perf_counter()
        store.open_index(REPO / "index")
        opens.append(time.perf_counter() - t)
    print(f"open + verify shipped index/: median {statistics.median(opens) * 1000:.0f} ms over 5")
    rows = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            index_dir = Path(tmp) / "index"
            shutil.copytree(REPO / "index", index_dir, ignore=shutil.ignore_patterns("models"))
            alt_file = Path(tmp) / "alternates.jsonl"
            wording = WORDINGS[run % len(WORDINGS)]
            t0 = time.perf_counter()
            append_alternates(alt_file, [Alternate(ITEM, "zh" if any("\u4e00" <= c <= "\u9fff" for c in wording) else "en",
                                                   wording, "bench", today())])
            t1 = time.perf_counter()
            summary = store.apply_alternates(index_dir, embedder, alt_file)
            t2 = time.perf_counter()
            stored = store.open_index(index_dir)
            t3 = time.perf_counter()
            hit = Retriever(stored.dense, stored.lexical, embedder).search(wording, k=1).hits[0].item.id
            t4 = time.perf_counter()
            rows.append((wording, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, hit == ITEM, summary["embedded"]))
    print(f"{'wording':<34}{'append':>8}{'apply':>8}{'open':>8}{'search':>8}{'total':>8}  found  embedded")
    for w, a, b, c, d, total, found, emb in rows:
        print(f"{w:<34}{a:>8.3f}{b:>8.3f}{c:>8.3f}{d:>8.3f}{total:>8.3f}  {str(found):<5}  {emb}")


if __name__ == "__main__":
    main()
