"""`benchmarks/bench.py --soak` runs end to end for a few seconds against the real app: it reports one row per
interval with throughput and the app's RSS, and the first-to-last change. Only the report's shape and sanity are
checked; how fast anything is goes into docs/performance.md, never into an assertion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "benchmarks" / "bench.py"

pytestmark = pytest.mark.slow


def test_soak_mode_reports_throughput_and_rss_per_interval(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.update(HOME=str(tmp_path), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(BENCH), "--soak", "0.1", "--interval", "2", "--warmup", "1",
                           "--clients", "2", "--json"], capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["endpoint"] == "/api/search" and report["clients"] == 2 and report["errors"] == 0
    rows = report["intervals"]
    assert len(rows) >= 2
    assert [r["t_s"] for r in rows] == sorted(r["t_s"] for r in rows)
    assert all(r["req_per_s"] >= 0 and r["rss_mb"] > 0 for r in rows)
    assert sum(r["req_per_s"] for r in rows) > 0  # requests were answered
    assert report["latency"]["n"] > 0
    first, last = rows[0], rows[-1]
    assert report["rss_change_pct"] == pytest.approx(100 * (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"], abs=0.1)


def test_soak_on_gradio_ask_with_repeated_questions_answers_them_all(tmp_path):
    """Issue 12's workload: a few dev questions over and over through Gradio's /ask (the answer cache serves them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.update(HOME=str(tmp_path), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(BENCH), "--soak", "0.1", "--interval", "3", "--warmup", "1",
                           "--clients", "2", "--endpoint", "ask", "--repeat", "5", "--json"],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["endpoint"] == "/gradio_api/call/ask" and report["questions"] == "5 repeated"
    assert report["errors"] == 0 and report["latency"]["n"] > 5  # more answers than questions: they repeat


def test_soak_refuses_a_non_positive_duration():
    proc = subprocess.run([sys.executable, str(BENCH), "--soak", "0"], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=120)
    assert proc.returncode == 2
    assert "--soak minutes, --interval and --clients must be positive" in proc.stderr
    assert "Traceback" not in proc.stderr
