"""Alternate questions: reviewed extra wordings of an FAQ item, kept in `corpus/alternates.jsonl`.

One JSON object a line: {"id": item id, "lang": "zh"|"en", "question": str, "approved_by": str,
"approved_at": ISO date}. A person approves each line (by hand or `faqbot feedback approve`); the index folder
gets them as extra question vectors and BM25 words of their item through `faqbot.store.apply_alternates`
(seconds, in place) or `faqbot index`. A broken line is reported with its line number, never skipped silently:
an approved wording that quietly vanished from the index would be a wrong answer nobody notices.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from faqbot.schema import LANGS

ALTERNATES_FILE = "alternates.jsonl"
MAX_QUESTION_CHARS = 2000
FIELDS = ("id", "lang", "question", "approved_by", "approved_at")


class AlternatesError(ValueError):
    """A line of the alternates file (or an alternate to add) is broken; the message names it."""


@dataclass(frozen=True)
class Alternate:
    id: str  # FaqItem.id the wording means
    lang: str  # "zh" | "en": the language of `question`
    question: str
    approved_by: str
    approved_at: str  # ISO date ("2026-11-28") or date-time

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def key(self) -> tuple[str, str, str]:
        """Two lines with the same key are the same alternate."""
        return (self.id, self.lang, " ".join(self.question.split()))


def alternates_path(corpus_dir: str | Path) -> Path:
    """Where the alternates of a corpus live: next to its pages, versioned with them."""
    return Path(corpus_dir) / ALTERNATES_FILE


def _problem(obj, item_ids: Collection[str] | None) -> str | None:
    """What is wrong with one decoded line (None when it is a valid alternate)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        return f"missing {', '.join(missing)}"
    for f in FIELDS:
        if not isinstance(obj[f], str):
            return f"{f} must be a string"
    if not obj["id"].strip():
        return "empty id"
    if obj["lang"] not in LANGS:
        return f"lang {obj['lang']!r} is not one of {', '.join(LANGS)}"
    question = obj["question"]
    if not question.strip():
        return "empty question"
    if len(question) > MAX_QUESTION_CHARS:
        return f"question longer than {MAX_QUESTION_CHARS} characters"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in question):
        return "question contains lone surrogates"
    if not obj["approved_by"].strip():
        return "empty approved_by (who approved this wording?)"
    try:
        _dt.datetime.fromisoformat(obj["approved_at"])
    except ValueError:
        return f"approved_at {obj['approved_at']!r} is not an ISO date (e.g. 2026-11-28)"
    if item_ids is not None and obj["id"] not in item_ids:
        return f"unknown item id {obj['id']!r}"
    return None


def parse_alternates(data: bytes, source: str = ALTERNATES_FILE, item_ids: Collection[str] | None = None) -> list[Alternate]:
    """Alternates from the bytes of an alternates file; blank lines are allowed, duplicates collapse to one.

    `item_ids`: the items of the index they are for; an id outside it is an error (checked only when given)."""
    out: list[Alternate] = []
    seen: set[tuple[str, str, str]] = set()
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            why = "not UTF-8"
        except ValueError as exc:
            why = f"bad JSON ({exc.msg})"
        else:
            why = _problem(obj, item_ids)
        if why:
            raise AlternatesError(f"{source}, line {lineno}: {why}; fix or delete that line, then run `faqbot index`")
        alt = Alternate(**{f: obj[f] for f in FIELDS})
        if alt.key not in seen:
            seen.add(alt.key)
            out.append(alt)
    return out


def read_alternates_bytes(path: str | Path | None) -> bytes:
    """The file's bytes; b"" when there is none (no file means no alternates)."""
    if path is None:
        return b""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise AlternatesError(f"cannot read {path} ({exc.strerror or exc})") from None


def load_alternates(path: str | Path, item_ids: Collection[str] | None = None) -> list[Alternate]:
    """Every alternate in `path` (a missing file has none). AlternatesError names the first broken line."""
    return parse_alternates(read_alternates_bytes(path), str(path), item_ids)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _line(alt: Alternate) -> bytes:
    return (json.dumps(alt.to_json(), ensure_ascii=False) + "\n").encode("utf-8")


def with_alternates(data: bytes, alts: Iterable[Alternate], source: str = ALTERNATES_FILE,
                    item_ids: Collection[str] | None = None) -> tuple[bytes, list[Alternate]]:
    """The bytes of an alternates file with `alts` added, and those actually added (exact repeats are skipped);
    writes nothing."""
    existing = {a.key for a in parse_alternates(data, source)}
    added: list[Alternate] = []
    for n, alt in enumerate(alts, start=1):
        why = _problem(alt.to_json() if isinstance(alt, Alternate) else alt, item_ids)
        if why:
            raise AlternatesError(f"alternate {n} to add: {why}")
        if alt.key not in existing:
            existing.add(alt.key)
            added.append(alt)
    if added:
        if data and not data.endswith(b"\n"):
            data += b"\n"
        data += b"".join(_line(a) for a in added)
    return data, added


def write_alternates_bytes(path: str | Path, data: bytes) -> None:
    """Replace the file's content atomically: a crash never leaves half a line."""
    _write_atomically(Path(path), data)


def check_writable(path: str | Path) -> None:
    """AlternatesError now when the file could not be replaced (its folder is read-only or missing)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise AlternatesError(f"cannot write {path} ({exc.strerror or exc})") from None


def append_alternates(path: str | Path, alts: Iterable[Alternate], item_ids: Collection[str] | None = None) -> list[Alternate]:
    """Add `alts` to the file (created if missing); returns those actually added (exact repeats are skipped).

    The file is rewritten atomically, so a crash never leaves half a line. Run
    `faqbot.store.apply_alternates` afterwards to put them in the index (or `faqbot.store.add_alternates`, which
    does both at once)."""
    path = Path(path)
    data, added = with_alternates(read_alternates_bytes(path), alts, str(path), item_ids)
    if added:
        _write_atomically(path, data)
    return added


def remove_alternates(path: str | Path, alts: Iterable[Alternate]) -> int:
    """Delete the lines holding `alts` (matched by item, language and wording); returns how many went."""
    path = Path(path)
    data = read_alternates_bytes(path)
    drop = {a.key for a in alts}
    kept, removed = [], 0
    for raw in data.split(b"\n"):
        if raw.strip():
            try:
                obj = json.loads(raw.decode("utf-8"))
                key = (obj["id"], obj["lang"], " ".join(obj["question"].split()))
            except (ValueError, KeyError, TypeError, AttributeError):
                key = None
            if key in drop:
                removed += 1
                continue
        kept.append(raw)
    if removed:
        out = b"\n".join(kept).rstrip(b"\n")
        _write_atomically(path, out + b"\n" if out else b"")
    return removed


def today() -> str:
    """An approved_at value for now (UTC date)."""
    return _dt.datetime.now(_dt.timezone.utc).date().isoformat()
