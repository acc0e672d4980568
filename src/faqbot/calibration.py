"""From ranking signals to a calibrated confidence and an answer level.

Two small logistic models over the signals of `Retriever.rank`:
- `answer`: the probability that the first entry answers the question. This is the `confidence` users see.
- `scope`: the probability that the FAQ covers the question at all; below `none_at` the reply is "not covered".

The coefficients and the two thresholds are fit by `scripts/calibrate.py` on the tuning half of the dev data only
(tests/data/*.jsonl, split by FAQ page) and stored in calibration.json beside this file; `faqbot eval` reports on the
other half.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


class CalibrationError(Exception):
    """The calibration file is missing or unreadable, or does not fit the ranking's signals."""


@dataclass(frozen=True)
class Logistic:
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def prob(self, signals: dict[str, float]) -> float:
        missing = [name for name in self.features if name not in signals]
        if missing:  # a renamed or dropped signal must not quietly count as 0
            raise CalibrationError(f"the ranking gives no signal {missing[0]!r}, which calibration.json weighs; "
                                   "run `python scripts/calibrate.py --write` after changing the signals")
        z = self.intercept
        for name, mu, sd, w in zip(self.features, self.mean, self.scale, self.coef):
            z += w * (float(signals[name]) - mu) / sd
        z = max(-40.0, min(40.0, z))
        return 1.0 / (1.0 + math.exp(-z))

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept}

    @classmethod
    def from_json(cls, d: dict) -> "Logistic":
        n = len(d["features"])
        if not (len(d["mean"]) == len(d["scale"]) == len(d["coef"]) == n):
            raise ValueError("feature, mean, scale and coef lengths differ")
        scale = tuple(float(s) or 1.0 for s in d["scale"])
        return cls(tuple(d["features"]), tuple(map(float, d["mean"])), scale, tuple(map(float, d["coef"])), float(d["intercept"]))


@dataclass(frozen=True)
class Calibration:
    answer: Logistic
    scope: Logistic
    answer_at: float  # confidence at or above: "answer"
    none_at: float  # scope probability below: "none"
    model: str = ""
    note: str = ""
    # the confidence scale the follow-up rule's gates (conversation.ContextRule) were tuned on: the answer model of
    # the written questions, kept when `answer` is refit on real questions too, so that the refit does not move them
    follow_up: Logistic | None = None

    def follow_up_prob(self, signals: dict[str, float]) -> float:
        """The first entry's confidence on the follow-up rule's scale (`answer` when no separate model is stored)."""
        return (self.follow_up or self.answer).prob(signals)

    def decide(self, signals: dict[str, float], answer_at: float | None = None) -> tuple[float, str]:
        """(confidence that the first entry answers, level)."""
        confidence = self.answer.prob(signals)
        if self.scope.prob(signals) < self.none_at:
            return confidence, "none"
        threshold = self.answer_at if answer_at is None else answer_at
        return confidence, ("answer" if confidence >= threshold else "related")

    def to_json(self) -> dict:
        d = {"model": self.model, "note": self.note, "answer_at": self.answer_at, "none_at": self.none_at,
             "answer": self.answer.to_json(), "scope": self.scope.to_json()}
        if self.follow_up is not None:
            d["follow_up"] = self.follow_up.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Calibration":
        return cls(Logistic.from_json(d["answer"]), Logistic.from_json(d["scope"]), float(d["answer_at"]),
                   float(d["none_at"]), d.get("model", ""), d.get("note", ""),
                   Logistic.from_json(d["follow_up"]) if d.get("follow_up") else None)

    def save(self, path: Path = CALIBRATION_FILE) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    try:
        return Calibration.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"cannot read the confidence calibration {path}: {exc}; "
                               "reinstall faqbot or run `python scripts/calibrate.py --write`") from None
