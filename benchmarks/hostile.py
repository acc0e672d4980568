"""Hostile input against the served app (issue 23's targets), on the real model and the shipped index:

    python benchmarks/hostile.py [--calls 80] [--load-seconds 120] [--clients 16]

1. A 1,000,000-character question on each surface (POST and GET /api/search, POST /api/feedback, Gradio /ask in
   ASCII and in CJK, Gradio /search), while another thread polls /healthz every 10 ms: the request's status and
   time, and /healthz's p50/p99/max latency while it ran (target: p99 <= 100 ms).
2. Memory: the app's RSS (/proc/<pid>/status) before and after `--calls` calls with ~5 MB inputs (refused at the
   door), then `--calls` calls with inputs just under the 1 MiB request limit (accepted) (target: <= +50 MB).
3. Gradio /ask under ordinary load: `--clients` clients asking real-looking questions for `--load-seconds`; RSS
   after a warm-up and at the end (target: <= +5%).
Prints figures; asserts nothing. The fuzz figures come from `FAQBOT_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import bench  # noqa: E402  (AppProcess: app.py on a free port)
from conftest import post  # noqa: E402  (a POST that reads a 413 sent before the body was all sent)

MILLION = 1_000_000
QUESTIONS = ["How do I install MindSpore on GPU?", "MindSpore 怎么安装？", "pip install mindspore failed", "如何设置日志级别？",
             "What is a Tensor in MindSpore?", "MindInsight 怎么启动？", "How to save a checkpoint?", "静态图模式报错怎么办？"]


def ms(values: list[float]) -> str:
    if not values:
        return "no polls"
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"n={len(values)} p50={statistics.median(values) * 1000:.1f} ms p99={p99 * 1000:.1f} ms max={values[-1] * 1000:.1f} ms"


def get(url: str, timeout: float = 120) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        try:
            return err.code, err.read()
        except ConnectionResetError:  # a head over the HTTP layer's 16 KB: 400 and a hang-up
            return err.code, b"(connection reset after the status line)"
    except (ConnectionResetError, urllib.error.URLError) as err:
        return 0, repr(err).encode()


def gradio(base: str, api: str, data: list) -> tuple[int, bytes]:
    status, raw = post(f"{base}/gradio_api/call/{api}", json.dumps({"data": data}).encode(), timeout=300)
    if status != 200:
        return status, raw
    status, stream = get(f"{base}/gradio_api/call/{api}/{json.loads(raw)['event_id']}", timeout=300)
    event = [line for line in stream.decode().splitlines() if line.startswith("event: ")][-1]
    return status, event.encode()


def million(base: str) -> None:
    text, cjk = "x" * MILLION, "中" * MILLION
    surfaces = {
        "POST /api/search": lambda: post(f"{base}/api/search", json.dumps({"q": text}).encode(), timeout=300),
        "GET /api/search": lambda: get(f"{base}/api/search?q={urllib.parse.quote(text)}"),
        "POST /api/feedback": lambda: post(f"{base}/api/feedback", json.dumps({"question": text, "item_id": "x", "vote": "like"}).encode(), timeout=300),
        "Gradio /ask (ASCII)": lambda: gradio(base, "ask", [text, "latest", "", None]),
        "Gradio /ask (CJK)": lambda: gradio(base, "ask", [cjk, "latest", "", None]),
        "Gradio /search": lambda: gradio(base, "search", [text, 3, "latest", "", None]),
    }
    print("\n1. A 1,000,000-character question; /healthz polled every 10 ms meanwhile")
    for name, call in surfaces.items():
        latencies, stop = [], threading.Event()

        def poll() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                get(f"{base}/healthz", timeout=60)
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.01)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(0.3)
        t0 = time.perf_counter()
        status, out = call()
        took = time.perf_counter() - t0
        time.sleep(0.3)
        stop.set()
        poller.join()
        print(f"  {name:22s} -> {status} {out[:60]!r} in {took:.2f} s; /healthz {ms(latencies)}")


def memory(app: bench.AppProcess, base: str, calls: int) -> None:
    huge = ["中" * 1_000] * 1_700  # ~5 MB as JSON
    under = ["install MindSpore " * 500] * 110  # ~990 KB: just under the 1 MiB request limit
    rounds = {
        "~5 MB inputs (Gradio /search history, POST /api/search history)": [
            lambda: gradio(base, "search", ["install", 3, "latest", "", huge]),
            lambda: post(f"{base}/api/search", json.dumps({"q": "install", "history": huge}).encode(), timeout=300)],
        "~1 MB inputs just under the limit (Gradio /search and /ask history)": [
            lambda: gradio(base, "search", ["install", 3, "latest", "", under]),
            lambda: gradio(base, "ask", ["install", "latest", "", under])],
    }
    print(f"\n2. Memory: {calls} calls each, RSS of the app before and 6 s after (the pruning task runs every second)")
    for name, kinds in rounds.items():
        for i in range(6):
            kinds[i % len(kinds)]()  # warm-up
        time.sleep(6)
        before = app.memory_mb()["rss_mb"]
        statuses, steps = [], []
        for i in range(calls):
            statuses.append(kinds[i % len(kinds)]()[0])
            if (i + 1) % 20 == 0:
                steps.append(app.memory_mb()["rss_mb"])
        time.sleep(6)
        after = app.memory_mb()["rss_mb"]
        print(f"  {name}: statuses {sorted(set(statuses))}; RSS {before:.0f} -> {after:.0f} MB ({after - before:+.0f} MB); "
              f"every 20 calls: {', '.join(f'{m:.0f}' for m in steps)} MB")


def load(app: bench.AppProcess, base: str, seconds: float, clients: int) -> None:
    print(f"\n3. Gradio /ask, {clients} clients, {seconds:.0f} s")
    for i in range(clients):
        gradio(base, "ask", [QUESTIONS[i % len(QUESTIONS)], "latest", "", None])
    time.sleep(6)
    before = app.memory_mb()["rss_mb"]
    deadline, counts, errors = time.monotonic() + seconds, [0] * clients, [0] * clients

    def client(n: int) -> None:
        i = n
        while time.monotonic() < deadline:
            status, event = gradio(base, "ask", [f"{QUESTIONS[i % len(QUESTIONS)]} {i}", "latest", "", None])
            counts[n] += 1
            errors[n] += status != 200 or event != b"event: complete"
            i += clients

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    mid = []
    while any(t.is_alive() for t in threads):
        time.sleep(min(30.0, seconds / 4))
        mid.append(app.memory_mb()["rss_mb"])
    time.sleep(6)
    after = app.memory_mb()["rss_mb"]
    print(f"  {sum(counts)} calls, {sum(errors)} not complete; RSS {before:.0f} -> {after:.0f} MB "
          f"({(after - before) / before * 100:+.1f}%); during: {', '.join(f'{m:.0f}' for m in mid)} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=80)
    parser.add_argument("--load-seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: million,memory,load")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        app = bench.AppProcess(bench.REPO_ROOT / "index", Path(tmp), {**__import__("os").environ, "FAQBOT_VOTE_RATE": "0"})
        print(f"app started in {app.start():.1f} s")
        base = f"http://127.0.0.1:{app.port}"
        try:
            if "million" not in skip:
                million(base)
            if "memory" not in skip:
                memory(app, base, args.calls)
            if "load" not in skip:
                load(app, base, args.load_seconds, args.clients)
            log = app.log_path.read_text(errors="replace")
            print(f"\napp log: {log.count('Traceback')} tracebacks, {len(log.splitlines())} lines")
        finally:
            app.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
