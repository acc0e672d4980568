"""The one owner of an index folder: opens, builds, checks and saves the dense vectors and BM25 together.

Why one module: the folder is trustworthy only as a whole. Every file in it (bm25/* included) is listed in
manifest.json with its size and sha256 and checked on every open, so a truncated, garbled or shuffled file is
refused with a message saying to run `faqbot index`, never loaded into a silently wrong ranking.

A save writes the whole folder into a temporary sibling (`.index.tmp-*`) and swaps it in with two renames
(`index` -> `.index.old-*`, tmp -> `index`). A crash between them is repaired by the next open: a complete tmp
is moved into place, or else the old copy is restored; leftovers are then removed. Writers and repairs hold an
exclusive flock on the parent folder, readers a shared one, so a reader never sees the folder half swapped.

Opening never parses the corpus or embeds anything. Only `faqbot index` (`build`), `rebuild_index` (an explicit
call, with a progress bar) and `apply_alternates` (only the new questions) run the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

from faqbot import __version__
from faqbot.alternates import Alternate, parse_alternates, read_alternates_bytes
from faqbot.alternates import alternates_path as corpus_alternates_path
from faqbot.chunk import DEFAULT_CHUNK_TOKENS, PASSAGE_TOKENS, cut_to_tokens
from faqbot.index import (
    EMBED_BATCH,
    ITEMS,
    KIND_Q,
    KIND_QA,
    is_alternate_row,
    ROW_DTYPE,
    ROWS,
    VECTORS,
    CorruptIndexError,
    FaqIndex,
    IndexFileError,
    IndexLoadError,
    IndexSpec,
    MissingIndexError,
    StaleIndexError,
    choose_index_type,
    corpus_fingerprint,
    entry_signature,
    make_faiss_index,
    plan_rows,
    row_key,
)
from faqbot.lexical import META as LEXICAL_META
from faqbot.lexical import LexicalIndex
from faqbot.schema import LANGS, Corpus

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
BM25_DIR = "bm25"
OTHER_MODELS = "models"  # index/models/<slug>: other models' own index folders, not part of this one
# In the folder but not part of the index (the default index/ keeps a tracked README): never in the manifest,
# never removed, carried over by every swap.
KEPT = (OTHER_MODELS, "README.md")
REQUIRED_FILES = (VECTORS, ROWS, ITEMS, f"{BM25_DIR}/{LEXICAL_META}")
LOCK_TIMEOUT_S = 120.0
# Test hook: stop a save at a named point ("written", "between-renames", "swapped") so a test can SIGKILL it there.
PAUSE_ENV = "FAQBOT_STORE_PAUSE_AT"
REBUILD_HINT = "run `faqbot index` to rebuild it"


class IndexWriteError(IndexLoadError):
    """The index folder cannot be written (read-only, full disk, ...); nothing was changed."""


@dataclass
class Manifest:
    """manifest.json: what the folder was built from and with, and (`files`) every file's size and sha256.

    Written by `build`, updated by `apply_alternates`, read on every open; FaqIndex keeps it as the dict
    `to_dict()` gives (the JSON on disk). Keys this faqbot does not know (a newer one wrote them) are kept in
    `extra` and written back."""

    model: str = ""
    dim: int = 0
    corpus_fingerprint: str | None = None
    # wordings from the FAQ files themselves (kept so `apply_alternates` re-adds them without the corpus)
    source_alternates: list = field(default_factory=list)
    # which FAQ this index answers from (no absolute path: the index may be built on another machine)
    corpus: dict = field(default_factory=dict)
    alternates: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    index: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    lexical: dict = field(default_factory=dict)
    chunk_max_tokens: int | None = None
    passage_max_tokens: int | None = None
    build_seconds: float | None = None
    built_at: str | None = None
    alternates_applied_at: str | None = None
    format_version: int = FORMAT_VERSION
    faqbot_version: str = __version__
    files: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    # on disk: this order; the two optional keys only when set; `files` last (added when the folder is written)
    _ORDER = ("format_version", "faqbot_version", "model", "dim", "corpus_fingerprint", "source_alternates", "corpus",
              "alternates", "counts", "index", "rows", "lexical", "chunk_max_tokens", "passage_max_tokens",
              "build_seconds", "built_at", "alternates_applied_at")

    def to_dict(self) -> dict:
        out = {}
        for name in self._ORDER:
            value = getattr(self, name)
            if name == "source_alternates" and not value or name == "alternates_applied_at" and value is None:
                continue
            out[name] = value
        out.update(self.extra)
        if self.files:
            out["files"] = self.files
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Manifest":
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        return cls(**kwargs, extra={k: v for k, v in data.items() if k not in known})


@dataclass
class StoredIndex:
    """An opened index folder: the dense index and the BM25 index built from the same items."""

    dense: FaqIndex
    lexical: LexicalIndex | None
    path: Path | None = None

    @property
    def manifest(self) -> dict:
        return self.dense.manifest


# ------------------------------------------------------------------ small helpers


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _carry(src: Path, dst: Path) -> None:
    """Move what is KEPT from folder `src` to `dst` (where it is not already)."""
    for name in KEPT:
        if (src / name).exists() and not (dst / name).exists():
            os.rename(src / name, dst / name)


def _pause(point: str) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        print(f"faqbot-store: paused at {point}", file=sys.stderr, flush=True)
        time.sleep(3600)


def _leftovers(index_dir: Path, kind: str) -> list[Path]:
    """`.index.tmp-*` / `.index.old-*` beside the folder, newest first."""
    found = [p for p in index_dir.parent.glob(f".{index_dir.name}.{kind}-*") if p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _write_error(index_dir: Path, exc: OSError) -> IndexWriteError:
    what = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return IndexWriteError(
            f"cannot write the index in {index_dir}: no space left on the disk ({what}); "
            f"free some space and run `faqbot index` again (the old index is unchanged)"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return IndexWriteError(
            f"cannot write the index in {index_dir}: the folder is read-only ({what}); "
            f"run `faqbot index --index <a writable folder>` or set FAQBOT_INDEX"
        )
    return IndexWriteError(f"cannot write the index in {index_dir} ({what}); set FAQBOT_INDEX to a writable folder")


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _lock(index_dir: Path, exclusive: bool):
    """flock on the folder's parent: one writer (or repair) at a time, and no reader during a swap."""
    try:
        fd = os.open(index_dir.parent, os.O_RDONLY)
    except OSError:  # parent missing or unreadable: nothing to protect yet
        yield
        return
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexLoadError(
                        f"another faqbot process has been writing the index in {index_dir} for over "
                        f"{LOCK_TIMEOUT_S:.0f} s; try again when it has finished"
                    ) from None
                time.sleep(0.05)
            except OSError:  # filesystem without flock: go on unlocked
                break
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------ checking files


def _listed_files(index_dir: Path, manifest: dict, corrupt) -> dict:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise corrupt(f"{MANIFEST} lists no files")
    for name, info in files.items():
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or parts[0] in (*KEPT, MANIFEST):
            raise corrupt(f"{MANIFEST} lists a file outside the index: {name!r}")
        if not isinstance(info, dict):
            raise corrupt(f"{MANIFEST} has no size and checksum for {name}")
    for name in REQUIRED_FILES:
        if name not in files:
            raise corrupt(f"{MANIFEST} does not list {name}")
    return files


def _present_files(index_dir: Path) -> set[str]:
    """Every file in the folder except the manifest and other models' folders, as manifest names."""
    out = set()
    for path in index_dir.rglob("*"):
        rel = path.relative_to(index_dir)
        if rel.parts[0] in KEPT or path.is_dir():
            continue
        out.add(rel.as_posix())
    out.discard(MANIFEST)
    return out


def _check_files(index_dir: Path, files: dict, corrupt, only_listed: bool = False) -> None:
    for name, info in files.items():
        path = index_dir / name
        if not path.is_file():
            raise corrupt(f"{name} is missing")
        size = path.stat().st_size
        if size != info.get("bytes"):
            raise corrupt(f"{name} has {size} bytes, the manifest says {info.get('bytes')}")
        if _sha256(path) != info.get("sha256"):
            raise corrupt(f"{name} does not match its checksum")
    extra = [] if only_listed else sorted(_present_files(index_dir) - set(files))
    if extra:
        raise corrupt(f"{extra[0]} is not in the manifest")


def _read_manifest(index_dir: Path, corrupt) -> dict:
    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise TypeError("not a JSON object")
        int(manifest["dim"])
        if not isinstance(manifest["model"], str) or manifest["index"]["type"] not in ("flat", "hnsw", "ivf"):
            raise TypeError("bad model or index type")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise corrupt(f"unreadable {MANIFEST}: {type(exc).__name__}: {str(exc)[:120]}") from None
    return manifest


def _corrupt_factory(index_dir: Path):
    def corrupt(why: str) -> CorruptIndexError:
        return CorruptIndexError(f"the index in {index_dir} is damaged ({why}); {REBUILD_HINT}")

    return corrupt


def _verified_manifest(index_dir: Path) -> dict:
    """The manifest of a complete, intact folder; CorruptIndexError / StaleIndexError / MissingIndexError."""
    corrupt = _corrupt_factory(index_dir)
    if not (index_dir / MANIFEST).is_file():
        if index_dir.is_dir() and any(index_dir.iterdir()):
            if any((index_dir / n).exists() for n in (VECTORS, ROWS, ITEMS, BM25_DIR)):
                raise CorruptIndexError(f"the index in {index_dir} is incomplete (no {MANIFEST}); {REBUILD_HINT}")
        raise MissingIndexError(f"no index in {index_dir}; run `faqbot index` to build it")
    manifest = _read_manifest(index_dir, corrupt)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StaleIndexError(
            f"the index in {index_dir} has format {manifest.get('format_version')!r}, this faqbot reads "
            f"{FORMAT_VERSION}; {REBUILD_HINT}"
        )
    _check_files(index_dir, _listed_files(index_dir, manifest, corrupt), corrupt)
    return manifest


# ------------------------------------------------------------------ recovery


def _complete(folder: Path) -> bool:
    try:
        _verified_manifest(folder)
        return True
    except IndexLoadError:
        return False


def _recover_locked(index_dir: Path) -> list[str]:
    """Finish or undo a save that was killed mid-way, then remove leftovers. Returns what was done."""
    actions: list[str] = []
    tmps, olds = _leftovers(index_dir, "tmp"), _leftovers(index_dir, "old")
    if not tmps and not olds:
        return actions
    try:
        if not index_dir.exists():
            chosen = next((p for p in tmps if _complete(p)), None)
            verb = "completed an interrupted save"
            if chosen is None:
                chosen = next((p for p in olds if _complete(p)), None)
                verb = "restored the previous index after an interrupted save"
            if chosen is not None:
                os.rename(chosen, index_dir)
                actions.append(f"{verb} ({chosen.name} -> {index_dir.name})")
        for left in [p for p in (*tmps, *olds) if p.exists()]:
            if index_dir.is_dir():
                _carry(left, index_dir)  # other models' indexes (and the README) travel with the swap
            shutil.rmtree(left)
            actions.append(f"removed {left.name}")
        _fsync(index_dir.parent)
    except OSError as exc:
        raise IndexLoadError(
            f"the index in {index_dir} was left half-saved and cannot be repaired here ({exc.strerror or exc}); "
            f"run `faqbot index` where the folder is writable"
        ) from None
    return actions


def recover(index_dir: str | Path) -> list[str]:
    """Repair the folder after a save that was killed (see module doc); a no-op when there is nothing to do."""
    index_dir = Path(index_dir)
    if not _leftovers(index_dir, "tmp") and not _leftovers(index_dir, "old"):
        return []
    with _lock(index_dir, exclusive=True):
        return _recover_locked(index_dir)


# ------------------------------------------------------------------ opening


def _load_dense(index_dir: Path, manifest: dict, corrupt) -> FaqIndex:
    try:
        return FaqIndex.load(index_dir, manifest)
    except IndexFileError as exc:
        raise corrupt(str(exc)) from None
    except Exception as exc:  # faiss raises RuntimeError, numpy ValueError, json ValueError, KeyError ...
        raise corrupt(f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _load_lexical(index_dir: Path, dense: FaqIndex, corrupt) -> LexicalIndex:
    try:
        lexical = LexicalIndex.load(index_dir / BM25_DIR)
        why = lexical.check()
    except Exception as exc:  # bm25s / numpy / json errors on a file that passed its checksum
        raise corrupt(f"{BM25_DIR}: {type(exc).__name__}: {str(exc)[:200]}") from None
    if why is None and lexical.n_docs != len(dense.items):
        why = f"BM25 has {lexical.n_docs} documents for {len(dense.items)} items"
    if why:
        raise corrupt(why)
    return lexical


def alternates_fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _corpus_name(corpus_dir: str | Path) -> str | None:
    from faqbot.corpus_config import CorpusConfigError, load_corpus_config

    try:
        return load_corpus_config(corpus_dir).name
    except CorpusConfigError:
        return None


def stale_reason(manifest: dict, model: str | None = None, corpus_dir: str | Path | None = None) -> str | None:
    """Why an index with this manifest does not match `model` / the corpus and alternates in `corpus_dir`."""
    if model is not None and model != manifest.get("model"):
        return f"the index was built for model {manifest.get('model')!r}, not {model!r}"
    if corpus_dir is not None and Path(corpus_dir).is_dir():
        if corpus_fingerprint(corpus_dir) != manifest.get("corpus_fingerprint"):
            built = (manifest.get("corpus") or {}).get("name")
            asked = _corpus_name(corpus_dir)
            if built and asked and built != asked:
                return (f"the index was built from the {built!r} FAQ, not from the {asked!r} FAQ in {corpus_dir}; "
                        f"give that corpus's index with --index, or build one for {corpus_dir}")
            return (f"the corpus in {corpus_dir}{f' ({asked!r})' if asked else ''} changed since the index was built"
                    + (f" from {built!r}" if built else ""))
        path = corpus_alternates_path(corpus_dir)
        try:
            data = read_alternates_bytes(path)
        except ValueError:
            data = None
        if data is None or alternates_fingerprint(data) != (manifest.get("alternates") or {}).get("sha256"):
            return f"{path} changed since the index was built"
    return None


def _open_locked(index_dir: Path, model, corpus_dir, lexical: bool) -> StoredIndex:
    corrupt = _corrupt_factory(index_dir)
    manifest = _verified_manifest(index_dir)
    dense = _load_dense(index_dir, manifest, corrupt)
    lex = _load_lexical(index_dir, dense, corrupt) if lexical else None
    reason = stale_reason(manifest, model, corpus_dir)
    if reason is not None:
        raise StaleIndexError(_stale_message(reason, index_dir))
    return StoredIndex(dense, lex, index_dir)


def _stale_message(reason: str, index_dir: str | Path) -> str:
    return f"{reason}; run `faqbot index` to update the index in {index_dir}"


def open_index(
    index_dir: str | Path, model: str | None = None, corpus_dir: str | Path | None = None, lexical: bool = True
) -> StoredIndex:
    """Open and verify the whole folder; never builds. With `model` / `corpus_dir`, a stale index is refused.

    Raises MissingIndexError, CorruptIndexError or StaleIndexError (all IndexLoadError), whose message says
    what to run. A save interrupted by a crash is repaired first (see `recover`)."""
    index_dir = Path(index_dir)
    recover(index_dir)
    with _lock(index_dir, exclusive=False):
        return _open_locked(index_dir, model, corpus_dir, lexical)


def read_index(index_dir: str | Path) -> FaqIndex:
    """The dense side of a verified folder (BM25 files are checksummed but not parsed); no staleness check."""
    return open_index(index_dir, lexical=False).dense


def index_status(index_dir: str | Path, model: str | None = None, corpus_dir: str | Path | None = None) -> tuple[bool, str]:
    """(up to date?, one line saying so or what is wrong) -- for `faqbot index --check`."""
    try:
        stored = open_index(index_dir, model, corpus_dir)
    except IndexLoadError as exc:
        return False, str(exc)
    return True, describe(index_dir, stored.manifest)


def opened_status(index: FaqIndex, index_dir: str | Path, model: str | None = None,
                  corpus_dir: str | Path | None = None) -> tuple[bool, str]:
    """`index_status` of an index already opened (and so already checked against its checksums): from its
    manifest alone, without opening or hashing the folder again -- the app's health line at start."""
    reason = stale_reason(index.manifest, model, corpus_dir)
    if reason is not None:
        return False, _stale_message(reason, index_dir)
    return True, describe(index_dir, index.manifest)


def describe(index_dir: str | Path, m: dict) -> str:
    """One line about an up-to-date index, from its manifest (`faqbot index --check`, /healthz)."""
    c = m["counts"]
    return (
        f"index in {index_dir} is up to date: {c['items']} items, {c['vectors']} vectors "
        f"({c.get('alternate_vectors', 0)} alternate questions), model {m['model']}, {m['index']['type']} index, "
        f"built {m.get('built_at', '?')}"
    )


# ------------------------------------------------------------------ saving


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_folder(stored: StoredIndex, directory: Path) -> dict:
    """Every file (each index writes its own), then the manifest listing them all (last: it marks the folder
    complete)."""
    if stored.lexical is None:
        raise ValueError("an index folder is saved with its BM25 index")
    stored.dense.save(directory)
    stored.lexical.save(directory / BM25_DIR)
    names = sorted(_present_files(directory))
    for name in names:
        _fsync(directory / name)
    files = {name: {"bytes": (directory / name).stat().st_size, "sha256": _sha256(directory / name)} for name in names}
    manifest = dataclasses.replace(Manifest.from_dict(stored.dense.manifest), format_version=FORMAT_VERSION,
                                   files=files).to_dict()
    _write_file(directory / MANIFEST, (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode())
    _fsync(directory / BM25_DIR)
    _fsync(directory)
    return manifest


def _replace_in_place(tmp: Path, index_dir: Path, manifest: dict) -> None:
    """Fallback when the folder itself cannot be renamed (a mount point): file by file, manifest last.
    Not atomic, but a crash leaves files that fail their checksums, so it is refused, never misread."""
    (index_dir / MANIFEST).unlink(missing_ok=True)
    for name in manifest["files"]:
        (index_dir / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / name, index_dir / name)
    for name in _present_files(index_dir) - set(manifest["files"]):
        (index_dir / name).unlink()
    os.replace(tmp / MANIFEST, index_dir / MANIFEST)


def _save_locked(stored: StoredIndex, index_dir: Path) -> Path:
    _recover_locked(index_dir)
    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=index_dir.parent))
    except OSError as exc:
        raise _write_error(index_dir, exc) from None
    old: Path | None = None
    try:
        os.chmod(tmp, 0o755)
        manifest = _write_folder(stored, tmp)
        _pause("written")
        if not index_dir.exists():
            os.rename(tmp, index_dir)
        else:
            _carry(index_dir, tmp)
            old = index_dir.parent / f"{tmp.name.replace('.tmp-', '.old-', 1)}"
            try:
                os.rename(index_dir, old)
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EINVAL):
                    raise
                old = None
                _carry(tmp, index_dir)
                _replace_in_place(tmp, index_dir, manifest)
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                _pause("between-renames")
                os.rename(tmp, index_dir)
                _fsync(index_dir.parent)
                _pause("swapped")
                shutil.rmtree(old, ignore_errors=True)
        _fsync(index_dir.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # put things back as they were
            if old is not None and old.exists() and not index_dir.exists():
                os.rename(old, index_dir)
            if index_dir.is_dir():
                _carry(tmp, index_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _write_error(index_dir, exc) from None
        raise
    stored.dense.manifest = manifest
    stored.dense.path = index_dir
    stored.path = index_dir
    return index_dir


def save(stored: StoredIndex, index_dir: str | Path) -> Path:
    """Write the whole folder (dense + BM25 + manifest) as one atomic swap. IndexWriteError when it cannot."""
    index_dir = Path(index_dir)
    with _lock(index_dir, exclusive=True):
        return _save_locked(stored, index_dir)


def check_writable(index_dir: str | Path) -> None:
    """IndexWriteError now, rather than after minutes of embedding, when the folder cannot be saved."""
    index_dir = Path(index_dir)
    parent = index_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=parent))
        probe.rmdir()
    except OSError as exc:
        raise _write_error(index_dir, exc) from None


# ------------------------------------------------------------------ building


def _with_source_alternates(alts: list[Alternate], source: list[tuple[str, str, str]]) -> list[Alternate]:
    """Approved alternates plus the wordings given in the FAQ files themselves (a table's `alternates`),
    which index the same way; a wording in both counts once."""
    approved = {a.key for a in alts}
    extra = [a for a in (Alternate(iid, lang, q, "source", "") for iid, lang, q in source) if a.key not in approved]
    return alts + extra


def _alternate_rows(alts: list[Alternate], pos: dict[str, int], embedder, limit: int) -> tuple[list[tuple], list[str]]:
    """Question rows (kind q, chunk 1, 2, ... per item and language) for approved alternate wordings."""
    from faqbot.text import to_simplified

    rows, texts, seen = [], [], set()
    ordinal: dict[tuple[int, int], int] = {}
    for alt in alts:
        item, lang = pos[alt.id], LANGS.index(alt.lang)
        text = cut_to_tokens(" ".join(to_simplified(alt.question).split()), embedder.token_count, limit)
        if (item, lang, text) in seen:
            continue
        seen.add((item, lang, text))
        ordinal[(item, lang)] = ordinal.get((item, lang), 0) + 1
        rows.append((item, lang, KIND_Q, ordinal[(item, lang)], row_key(embedder.name, "query", text)))
        texts.append(text)
    return rows, texts


def _merge_rows(base: np.ndarray, extra: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by item (the item's own rows first, then its alternates) and, per merged row, its source
    position: i < len(base) is base[i], otherwise extra[i - len(base)]."""
    merged = np.concatenate([base, np.array(extra, dtype=ROW_DTYPE)]) if extra else base.copy()
    order = np.argsort(merged["item"], kind="stable")
    return merged[order], order


def _embed_missing(rows: np.ndarray, texts: list[str], vectors: np.ndarray, todo: np.ndarray, embedder, progress: bool) -> int:
    todo_ids = np.flatnonzero(todo)
    with tqdm(total=len(todo_ids), unit="vec", desc="embedding", disable=not progress) as bar:
        for kind, embed in ((KIND_Q, embedder.embed_symmetric), (KIND_QA, embedder.embed_passages)):
            ids = todo_ids[rows["kind"][todo_ids] == kind]
            for start in range(0, len(ids), EMBED_BATCH):
                batch = ids[start : start + EMBED_BATCH]
                vectors[batch] = embed([texts[i] for i in batch])
                bar.update(len(batch))
    return len(todo_ids)


def _known_plans(reuse: FaqIndex | None, embedder, limit: int, passage_tokens: int | None) -> dict:
    """entry_signature -> the entry's own rows (kind, chunk, key) in `reuse`, when it was planned with the same
    model and token limits; plan_rows then skips cutting the passages of every unchanged entry."""
    if reuse is None or reuse.model != embedder.name or reuse.dim != embedder.dim or not len(reuse.rows):
        return {}
    manifest = reuse.manifest
    if manifest.get("chunk_max_tokens") != limit or manifest.get("passage_max_tokens") != (
            min(passage_tokens, limit) if passage_tokens else None):
        return {}
    by_entry: dict[tuple[int, int], list] = {}
    for row in reuse.rows[~is_alternate_row(reuse.rows)]:
        by_entry.setdefault((int(row["item"]), int(row["lang"])), []).append(
            (int(row["kind"]), int(row["chunk"]), bytes(row["key"])))
    out: dict = {}
    for (item_no, lang_no), planned in by_entry.items():
        entry = reuse.items[item_no].entries.get(LANGS[lang_no])
        if entry is not None:  # entries with the same text (a page in two versions) have the same rows
            out.setdefault(entry_signature(entry), planned)
    return out


def _reuse_vectors(rows: np.ndarray, vectors: np.ndarray, reuse: FaqIndex | None, embedder) -> np.ndarray:
    """Copy vectors of rows whose exact text `reuse` embedded with the same model; returns what is left to do."""
    todo = np.ones(len(rows), bool)
    if reuse is not None and reuse.model == embedder.name and reuse.dim == embedder.dim and len(reuse.rows):
        known = {key: i for i, key in enumerate(reuse.rows["key"])}
        for i, key in enumerate(rows["key"]):
            j = known.get(key)
            if j is not None:
                vectors[i] = reuse.vectors[j]
                todo[i] = False
    return todo


def _extra_questions(rows: np.ndarray, texts: dict[int, str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for i, text in texts.items():
        out.setdefault(int(rows["item"][i]), []).append(text)
    return out


def _counts(items, rows: np.ndarray, embedded: int) -> dict:
    is_alt = is_alternate_row(rows)
    return {
        "items": len(items),
        "entries": sum(len(it.entries) for it in items),
        "vectors": int(len(rows)),
        "q_vectors": int(((rows["kind"] == KIND_Q) & ~is_alt).sum()) if len(rows) else 0,
        "qa_vectors": int((rows["kind"] == KIND_QA).sum()) if len(rows) else 0,
        "alternate_vectors": int(is_alt.sum()),
        "embedded": int(embedded),
        "reused": int(len(rows) - embedded),
    }


def _reusable(index_dir: Path) -> FaqIndex | None:
    """Vectors to reuse from what is in the folder now: a current index, or (older format, damaged BM25) its
    dense files, each checked against its own checksum. None when there is nothing trustworthy."""
    try:
        return read_index(index_dir)
    except MissingIndexError:
        return None
    except IndexLoadError:
        pass
    corrupt = _corrupt_factory(index_dir)
    try:
        manifest = _read_manifest(index_dir, corrupt)
        files = manifest.get("files") or {}
        _check_files(index_dir, {n: files[n] for n in (VECTORS, ROWS, ITEMS)}, corrupt, only_listed=True)
        return _load_dense(index_dir, manifest, corrupt)
    except (IndexLoadError, KeyError, TypeError, OSError):
        return None


def build(
    corpus: Corpus,
    embedder,
    index_dir: str | Path | None = None,
    progress: bool = True,
    reuse: FaqIndex | bool = True,
    spec: IndexSpec | None = None,
    max_tokens: int = DEFAULT_CHUNK_TOKENS,
    alternates_file: str | Path | None = None,
    passage_tokens: int | None = PASSAGE_TOKENS,
) -> StoredIndex:
    """Embed every item of `corpus` (and its approved alternates), build BM25, and save when `index_dir` is given.

    `reuse`: an older index (True: whatever is readable in `index_dir`); rows whose exact text it embedded with
    the same model are copied from it, so a rebuild after editing one page embeds only what changed.
    `alternates_file`: default `<corpus root>/alternates.jsonl`; AlternatesError names a broken line."""
    started = time.perf_counter()
    if index_dir is not None:
        index_dir = Path(index_dir)
    if reuse is True:
        reuse = _reusable(index_dir) if index_dir is not None else None
    elif reuse is False:
        reuse = None
    root = Path(corpus.root) if corpus.root else None
    fingerprint = corpus_fingerprint(root) if root is not None and root.is_dir() else None
    if alternates_file is None and root is not None:
        alternates_file = corpus_alternates_path(root)
    alt_bytes = read_alternates_bytes(alternates_file)
    items = list(corpus.items)
    pos = {it.id: i for i, it in enumerate(items)}
    alts = parse_alternates(alt_bytes, str(alternates_file), item_ids=pos)
    alts = _with_source_alternates(alts, corpus.alternates)
    limit = min(max_tokens, embedder.max_tokens)

    base_rows, base_texts = plan_rows(items, embedder, max_tokens, passage_tokens,
                                      known=_known_plans(reuse, embedder, limit, passage_tokens))
    alt_rows, alt_texts = _alternate_rows(alts, pos, embedder, limit)
    rows, order = _merge_rows(base_rows, alt_rows)
    all_texts = base_texts + alt_texts
    texts = [all_texts[i] for i in order]
    vectors = np.zeros((len(rows), embedder.dim), np.float32)
    todo = _reuse_vectors(rows, vectors, reuse, embedder)
    embedded = _embed_missing(rows, texts, vectors, todo, embedder, progress)

    if progress:
        print("faqbot: 3/3 the vector and BM25 indexes, saved together", file=sys.stderr, flush=True)
    spec = spec or choose_index_type(len(rows))
    faiss_index = make_faiss_index(spec, embedder.dim, vectors)
    extra = _extra_questions(rows, {i: texts[i] for i in np.flatnonzero(is_alternate_row(rows))})
    lexical = LexicalIndex.build(items, fingerprint or "", extra)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    manifest = Manifest(
        model=embedder.name,
        dim=int(embedder.dim),
        corpus_fingerprint=fingerprint,
        source_alternates=[list(a) for a in corpus.alternates],
        corpus={"name": corpus.name or None, "folder": root.name if root is not None else None},
        alternates={"file": str(Path(alternates_file).name) if alternates_file else None,
                    "sha256": alternates_fingerprint(alt_bytes), "count": len(alts)},
        counts=_counts(items, rows, embedded),
        index={"type": spec.type, "params": dict(spec.params), "metric": "inner_product"},
        rows={"q": "question alone, embedded as a query; chunk 0 is the entry's own, chunk n > 0 an approved alternate",
              "qa": ("question + the start of its answer (passage_max_tokens), as a passage" if passage_tokens
                     else "question + answer chunk (chunk_max_tokens), as a passage")},
        lexical={"backend": "bm25s", "documents": len(items), "alternates": sum(len(v) for v in extra.values())},
        chunk_max_tokens=limit,
        passage_max_tokens=min(passage_tokens, limit) if passage_tokens else None,
        build_seconds=round(time.perf_counter() - started, 2),
        built_at=now,
    ).to_dict()
    dense = FaqIndex(items=items, rows=rows, faiss_index=faiss_index, manifest=manifest)
    stored = StoredIndex(dense, lexical)
    if index_dir is not None:
        save(stored, index_dir)
    return stored


def rebuild_index(index_dir: str | Path, embedder, corpus_dir: str | Path, progress: bool = True) -> StoredIndex:
    """The explicit rebuild: parse the corpus, embed what changed (progress bar on stderr), save atomically."""
    from faqbot.config import NO_CORPUS
    from faqbot.corpus import load_corpus

    if corpus_dir is None:
        raise MissingIndexError(f"cannot build the index in {index_dir}: {NO_CORPUS}")
    if not Path(corpus_dir).is_dir():
        raise MissingIndexError(f"cannot build the index in {index_dir}: no corpus folder at {corpus_dir}; "
                                f"pass --corpus PATH or set FAQBOT_CORPUS (see corpus/README.md)")
    check_writable(index_dir)
    say = (lambda text: print(f"faqbot: {text}", file=sys.stderr, flush=True)) if progress else (lambda text: None)
    say(f"building the index in {index_dir} from {corpus_dir}: 1/3 reading the pages")
    corpus = load_corpus(corpus_dir)
    for problem in corpus.problems:
        say(problem.message)
    if not corpus.items:
        raise MissingIndexError(f"cannot build the index in {index_dir}: no FAQ entries found under {corpus_dir}; "
                                f"point --corpus / FAQBOT_CORPUS at the folder of FAQ pages")
    say(f"{len(corpus.entries)} entries in {len(corpus.files)} pages, {len(corpus.items)} items: 2/3 embedding")
    return build(corpus, embedder, index_dir, progress=progress)


# ------------------------------------------------------------------ alternates, in place


def apply_alternates(index_dir: str | Path, embedder, alternates_path: str | Path) -> dict:
    """Bring the index in `index_dir` in line with `alternates_path`, in place and in seconds.

    Only questions not already in the index are embedded; removed ones lose their rows; BM25 is rebuilt from
    the stored items (no corpus parse). The manifest records the file's sha256 and count. One atomic save:
    a crash leaves the old index or the new one. Returns a summary (counts and seconds)."""
    index_dir = Path(index_dir)
    with _lock(index_dir, exclusive=True):
        _recover_locked(index_dir)
        return _apply_locked(index_dir, embedder, read_alternates_bytes(alternates_path), alternates_path)


def add_alternates(index_dir: str | Path, embedder, alternates_path: str | Path, alts: list[Alternate],
                   item_ids=None) -> tuple[list[Alternate], dict]:
    """Add approved wordings to the alternates file and to the index together: (those added, the summary of
    `apply_alternates`).

    Both folders are checked writable before anything changes, so a read-only index refuses at once and leaves
    nothing half done. The index is updated and the file replaced under the index's write lock, which every
    process opening the index waits for: none ever sees the file ahead of the index (and refuses to start
    because "alternates.jsonl changed"). When the file cannot be replaced after all, the index is put back."""
    from faqbot.alternates import check_writable as check_file_writable
    from faqbot.alternates import with_alternates, write_alternates_bytes

    index_dir, path = Path(index_dir), Path(alternates_path)
    check_writable(index_dir)
    check_file_writable(path)
    with _lock(index_dir, exclusive=True):
        _recover_locked(index_dir)
        before = read_alternates_bytes(path)
        after, added = with_alternates(before, alts, str(path), item_ids)
        summary = _apply_locked(index_dir, embedder, after, path)
        if after != before:
            try:
                write_alternates_bytes(path, after)
            except OSError:
                _apply_locked(index_dir, embedder, before, path)
                raise
    return added, summary


def _apply_locked(index_dir: Path, embedder, alt_bytes: bytes, alternates_path: str | Path) -> dict:
    """apply_alternates with the write lock held, for the alternates `alt_bytes` (the file's content to be)."""
    started = time.perf_counter()
    corrupt = _corrupt_factory(index_dir)
    manifest = _verified_manifest(index_dir)
    old = _load_dense(index_dir, manifest, corrupt)
    if old.model != embedder.name or old.dim != embedder.dim:
        raise StaleIndexError(
            f"the index in {index_dir} was built for model {old.model!r}, not {embedder.name!r}; "
            f"apply the alternates with that model, or run `faqbot index`"
        )
    sha = alternates_fingerprint(alt_bytes)
    pos = {it.id: i for i, it in enumerate(old.items)}
    alts = parse_alternates(alt_bytes, str(alternates_path), item_ids=pos)
    alts = _with_source_alternates(alts, [tuple(a) for a in manifest.get("source_alternates", [])])
    is_alt = is_alternate_row(old.rows)
    before = set(old.rows["key"][is_alt].tolist())
    if (manifest.get("alternates") or {}).get("sha256") == sha:
        return {"changed": False, "alternates": len(alts), "added": 0, "removed": 0, "embedded": 0,
                "seconds": round(time.perf_counter() - started, 3)}
    limit = int(manifest.get("chunk_max_tokens") or min(DEFAULT_CHUNK_TOKENS, embedder.max_tokens))
    alt_rows, alt_texts = _alternate_rows(alts, pos, embedder, limit)
    keep = np.flatnonzero(~is_alt)
    rows, order = _merge_rows(old.rows[keep], alt_rows)
    vectors = np.zeros((len(rows), old.dim), np.float32)
    n_base = len(keep)
    from_old = order < n_base
    vectors[from_old] = old.vectors[keep[order[from_old]]]
    texts = ["" if o < n_base else alt_texts[o - n_base] for o in order]
    todo = ~from_old & _reuse_vectors(rows, vectors, old, embedder)
    embedded = _embed_missing(rows, texts, vectors, todo, embedder, progress=False)
    after = set(rows["key"][~from_old].tolist())

    spec = old.spec
    faiss_index = make_faiss_index(spec, old.dim, vectors)
    extra = _extra_questions(rows, {i: texts[i] for i in np.flatnonzero(~from_old)})
    fingerprint = manifest.get("corpus_fingerprint") or ""
    lexical = LexicalIndex.build(old.items, fingerprint, extra)
    new_manifest = dataclasses.replace(
        Manifest.from_dict(manifest),
        alternates={"file": Path(alternates_path).name, "sha256": sha, "count": len(alts)},
        counts=_counts(old.items, rows, embedded),
        lexical={**manifest.get("lexical", {}), "alternates": int((~from_old).sum())},
        faqbot_version=__version__,
        alternates_applied_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        files={},
    ).to_dict()
    dense = FaqIndex(items=old.items, rows=rows, faiss_index=faiss_index, manifest=new_manifest)
    _save_locked(StoredIndex(dense, lexical), index_dir)
    return {"changed": True, "alternates": len(alts), "added": len(after - before), "removed": len(before - after),
            "embedded": int(embedded), "seconds": round(time.perf_counter() - started, 3)}


# ------------------------------------------------------------------ the dense side alone (tests, benchmarks)


def build_index(
    corpus: Corpus,
    embedder,
    out_dir: str | Path | None = None,
    progress: bool = True,
    reuse: FaqIndex | bool = True,
    spec: IndexSpec | None = None,
    max_tokens: int = DEFAULT_CHUNK_TOKENS,
    passage_tokens: int | None = PASSAGE_TOKENS,
) -> FaqIndex:
    """`build`, returning the dense index only (with `out_dir`, the whole folder is saved)."""
    return build(corpus, embedder, out_dir, progress=progress, reuse=reuse, spec=spec, max_tokens=max_tokens,
                 passage_tokens=passage_tokens).dense


def save_index(index: FaqIndex, out_dir: str | Path) -> Path:
    """Save `index` with a BM25 index built from its items, atomically (an index holding alternate questions is
    saved by `build` / `apply_alternates`, which have their text for BM25)."""
    if is_alternate_row(index.rows).any():
        raise ValueError("an index with alternate questions is saved by faqbot.store (it needs their text for BM25)")
    lexical = LexicalIndex.build(index.items, index.manifest.get("corpus_fingerprint") or "")
    return save(StoredIndex(index, lexical), out_dir)


def load_index(
    index_dir: str | Path,
    embedder=None,
    corpus_dir: str | Path | None = None,
    rebuild: bool | None = None,
    progress: bool = True,
) -> FaqIndex:
    """The dense index in `index_dir`, checked against the model and the corpus in `corpus_dir`.

    `embedder`: an Embedder or a model id (None: accept whatever model the index was built with).
    rebuild=None/False: never build; MissingIndexError / StaleIndexError / CorruptIndexError say what to run.
    rebuild=True is the explicit rebuild (`rebuild_index`)."""
    model = embedder if isinstance(embedder, str) or embedder is None else embedder.name
    try:
        return open_index(index_dir, model, corpus_dir, lexical=False).dense
    except IndexLoadError:
        if not rebuild:
            raise
    from faqbot.embed import DEFAULT_MODEL, load_embedder

    if embedder is None or isinstance(embedder, str):
        embedder = load_embedder(model or DEFAULT_MODEL)
    return rebuild_index(index_dir, embedder, corpus_dir, progress=progress).dense
