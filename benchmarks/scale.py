"""How the dense index scales: flat vs approximate FAISS indexes on synthetic corpora of N vectors.

The synthetic vectors start from the real FAQ vectors (the built index, or freshly embedded items), so they
keep e5's anisotropic geometry: each one is a random mix of two real vectors plus gaussian noise,
re-normalised. Queries are real question vectors plus noise, held out from the database. For each index
type: build time, single-query latency (k=10, FAISS threads as in production), memory, and recall@10
against exact flat search.

    python benchmarks/scale.py                       # 10k and 100k
    python benchmarks/scale.py --sizes 1000000 --types flat hnsw ivf
    python benchmarks/scale.py --sizes 2000 --queries 50 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from faqbot.index import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    IndexSpec,
    KIND_Q,
    choose_index_type,
    make_faiss_index,
)
from faqbot.store import read_index

K = 10


def release_free_memory() -> None:
    """Give freed heap back to the OS so the next RSS delta measures the new index, not reused pages."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def base_vectors(index_dir: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(all real vectors, question-only vectors, where they came from)."""
    if index_dir is not None:
        try:
            index = read_index(index_dir)
            vecs = np.array(index.vectors, dtype=np.float32)
            return vecs, vecs[index.rows["kind"] == KIND_Q], f"index {index_dir} ({index.model})"
        except Exception as exc:  # no or stale index: embed a sample of the corpus instead
            print(f"(could not read {index_dir}: {exc}; embedding corpus items)", file=sys.stderr)
    from faqbot.config import settings_from_env
    from faqbot.corpus import load_corpus
    from faqbot.embed import load_embedder

    settings = settings_from_env()
    embedder = load_embedder(settings.model)
    entries = load_corpus(settings.corpus()).entries[:300]
    questions = embedder.embed_symmetric([e.question for e in entries])
    passages = embedder.embed_passages([e.question + "\n\n" + e.answer[:800] for e in entries])
    return np.vstack([questions, passages]), questions, f"{len(entries)} corpus entries embedded with {embedder.name}"


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def synthetic(base: np.ndarray, n: int, noise: float, rng: np.random.Generator, block: int = 100_000) -> np.ndarray:
    """n vectors: normalise(lam*a + (1-lam)*b + noise*g/sqrt(d)) for random real a, b, lam in [0.5, 1]."""
    d = base.shape[1]
    out = np.empty((n, d), np.float32)
    for start in range(0, n, block):
        m = min(block, n - start)
        a = base[rng.integers(0, len(base), m)]
        b = base[rng.integers(0, len(base), m)]
        lam = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        x = lam * a + (1 - lam) * b + (noise / np.sqrt(d)) * rng.standard_normal((m, d), dtype=np.float32)
        out[start : start + m] = _normalise(x)
    return out


def index_bytes(index: faiss.Index) -> int:
    with tempfile.NamedTemporaryFile(suffix=".faiss") as tmp:
        faiss.write_index(index, tmp.name)
        return os.path.getsize(tmp.name)


def latency_ms(index: faiss.Index, queries: np.ndarray) -> tuple[float, float]:
    for q in queries[:5]:
        index.search(q[None, :], K)  # warm up
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], K)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)]))


def search_variants(kind: str) -> list[tuple[str, int]]:
    """(parameter, value) pairs swept after one build: search-time knobs cost nothing to vary."""
    if kind == "hnsw":
        return [("efSearch", v) for v in (32, 64, HNSW_EF_SEARCH, 256)]
    if kind == "ivf":
        return [("nprobe", v) for v in (8, 16, 32, 64)]
    return [("", 0)]


def set_search_param(index: faiss.Index, name: str, value: int) -> None:
    if name == "efSearch":
        faiss.downcast_index(index).hnsw.efSearch = value
    elif name == "nprobe":
        faiss.extract_index_ivf(index).nprobe = value


def run_size(n: int, kinds: list[str], base: np.ndarray, qbase: np.ndarray, n_queries: int, noise: float, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    data = synthetic(base, n, noise, rng)
    queries = _normalise(
        qbase[rng.integers(0, len(qbase), n_queries)]
        + (noise / np.sqrt(base.shape[1])) * rng.standard_normal((n_queries, base.shape[1]), dtype=np.float32)
    )
    exact = faiss.IndexFlatIP(data.shape[1])
    exact.add(data)
    _, truth = exact.search(queries, K)
    del exact
    release_free_memory()

    results = []
    for kind in kinds:
        params = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH} if kind == "hnsw" else {}
        release_free_memory()
        rss0 = rss_bytes()
        t = time.perf_counter()
        index = make_faiss_index(IndexSpec(kind, params), data.shape[1], data)
        build_s = time.perf_counter() - t
        rss_delta = rss_bytes() - rss0
        size = index_bytes(index)
        for name, value in search_variants(kind):
            set_search_param(index, name, value)
            p50, p99 = latency_ms(index, queries)
            _, found = index.search(queries, K)
            results.append(
                {
                    "n_vectors": n,
                    "type": kind,
                    "search_param": f"{name}={value}" if name else "",
                    "build_s": round(build_s, 2),
                    "p50_ms": round(p50, 3),
                    "p99_ms": round(p99, 3),
                    "recall_at_10": round(recall_at_k(found, truth), 4),
                    "index_mb": round(size / 2**20, 1),
                    "rss_delta_mb": round(rss_delta / 2**20, 1),
                }
            )
        del index
        release_free_memory()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="numbers of vectors")
    parser.add_argument("--types", nargs="+", default=["flat", "hnsw"], choices=["flat", "hnsw", "ivf"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.5, help="norm of the gaussian noise added to each unit vector")
    parser.add_argument("--index", type=Path, default=None, help="index directory with the real vectors (default: the repo's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    if args.index is None:
        from faqbot.config import Settings

        args.index = Settings().index_dir
    base, qbase, source = base_vectors(args.index)
    rows = []
    for n in args.sizes:
        rows.extend(run_size(n, args.types, base, qbase, args.queries, args.noise, args.seed))
    report = {
        "source": source,
        "base_vectors": int(len(base)),
        "queries": args.queries,
        "noise": args.noise,
        "k": K,
        "faiss_threads": faiss.omp_get_max_threads(),
        "cpus": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # other work on the machine skews latencies
        "chosen": {str(n): choose_index_type(n).type for n in args.sizes},
        "results": rows,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"base: {source}, {len(base)} vectors; {args.queries} queries; noise {args.noise}; "
          f"faiss threads {report['faiss_threads']}; load average {report['load_avg_1m_at_end']} on {report['cpus']} cpus")
    header = ["n_vectors", "type", "search_param", "build_s", "p50_ms", "p99_ms", "recall_at_10", "index_mb", "rss_delta_mb"]
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in header]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(r[h]).rjust(w) for h, w in zip(header, widths)))
    print("chosen index type by size:", ", ".join(f"{n}: {t}" for n, t in report["chosen"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
