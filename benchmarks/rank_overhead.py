"""Time everything in a search except the model's forward pass: warm, with query vectors cached.

    python benchmarks/rank_overhead.py index          # this checkout
    git worktree add /tmp/old ef78854 && PYTHONPATH=/tmp/old/src python benchmarks/rank_overhead.py /tmp/old/index
"""
import json, statistics, sys, time
from pathlib import Path
from faqbot.config import Settings
from faqbot.search import Retriever
import faqbot
print("faqbot from", faqbot.__file__)
r = Retriever.from_settings(Settings(index_dir=Path(sys.argv[1])), rebuild=False)
qs = [json.loads(l)["q"] for l in open(Path(__file__).resolve().parents[1] / "tests" / "data" / "devset.jsonl")][:200]
for q in qs: r.search(q)  # fill the query cache: the model is out of the timing
ts = []
for _ in range(3):
    for q in qs:
        t = time.perf_counter(); r.search(q); ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print(f"search minus model, devset.jsonl 200 questions x3: p50 {statistics.median(ts):.3f} ms  p90 {ts[int(.9*len(ts))]:.3f} ms  p99 {ts[int(.99*len(ts))]:.3f} ms")
