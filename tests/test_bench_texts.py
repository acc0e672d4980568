"""The floor's throughput bound is measured on the very texts the 16-client load runs send (issue 21: ratios are
against the model alone on the same texts). The tag that makes a question new adds tokens, so texts "like" the
load's would give the model a different amount of work."""

from __future__ import annotations

import http.server
import json
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import bench  # noqa: E402


class _Catcher(http.server.BaseHTTPRequestHandler):
    """/api/search that answers at once and keeps every question it was asked."""

    asked: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.asked.append(parse_qs(urlparse(self.path).query)["q"][0])
        body = json.dumps({"answers": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_floor_embeds_texts_the_load_run_sends():
    questions = [f"question number {k}" for k in range(23)]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Catcher)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Catcher.asked = []
        bench.LoadRun(server.server_address[1], questions, 4, "api", "a16").run(0.5)
    finally:
        server.shutdown()
        server.server_close()
    sent = set(_Catcher.asked)
    floor_texts = bench.load_texts(questions, "a16", clients=4)
    assert len(sent) > 20, "the load run sent too few questions to compare"
    early = [t for t in floor_texts if t in sent]
    # every text the load run sent among the floor's sampled indices is one the floor embeds, and vice versa
    sampled = {bench.distinct_text(questions, "a16", n, i) for n in range(4) for i in range(0, 200, 3)}
    assert sent & sampled, "no sampled index was reached"
    assert set(early) == sent & sampled
    assert all(t.startswith(tuple(questions)) for t in floor_texts)
