"""How long a new team's 100-entry FAQ takes to index: read, embed every row, build FAISS + BM25, save.

The FAQ is a CSV of 100 question/answer rows made in a temporary folder from the public FAQs in
../shared/faqs (PaddlePaddle's 96 entries, then the first 4 of ant-design's Chinese page), so its answers
are real in length and markup. The model is loaded first and timed apart; the build embeds from scratch
(no reuse of an older index; one build per process, as the embedder keeps the vectors it made). A print, not
a test: the wall time depends on the machine and its load (printed beside it); the CPU time, summed over the
process's threads, much less so (on an idle machine the wall time is at most that, less with two cores).

    .venv/bin/python benchmarks/index_faq.py [--faqs ../shared/faqs]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_faq(faqs: Path, out: Path, n: int = 100) -> Path:
    from faqbot.sources import load_corpus

    entries = load_corpus(faqs / "paddlepaddle").entries + load_corpus(faqs / "ant-design" / "faq.zh-CN.md").entries
    path = out / "faq.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer"])
        for e in entries[:n]:
            w.writerow([e.question, e.answer])
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faqs", type=Path, default=ROOT.parent / "shared" / "faqs")
    args = ap.parse_args()

    from faqbot.embed import DEFAULT_MODEL, load_embedder
    from faqbot.sources import load_corpus
    from faqbot.store import build

    with tempfile.TemporaryDirectory(prefix="faqbot-bench-index-") as tmp:
        tmp = Path(tmp)
        (tmp / "faq").mkdir()
        make_faq(args.faqs, tmp / "faq")
        t = time.perf_counter()
        embedder = load_embedder(DEFAULT_MODEL)
        print(f"model load: {time.perf_counter() - t:.1f} s  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        t, cpu = time.perf_counter(), time.process_time()
        corpus = load_corpus(tmp / "faq")
        read = time.perf_counter() - t
        stored = build(corpus, embedder, tmp / "index", progress=False, reuse=False)
        total, cpu = time.perf_counter() - t, time.process_time() - cpu
        c = stored.manifest["counts"]
        print(f"{len(corpus.entries)} entries, {c['embedded']} vectors embedded: read {read:.2f} s, "
              f"read + embed + FAISS + BM25 + save {total:.1f} s wall, {cpu:.1f} s CPU (all threads)  "
              f"(load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
