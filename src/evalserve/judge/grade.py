"""`Grade`: the outcome of grading one item, and its result record."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from evalserve.errors import InvalidInputError
from evalserve.judge.rubric import Rubric

__all__ = ["Grade", "human_score"]


@dataclass
class Grade:
    """The outcome of grading one item (of judging one pair, for a pairwise rubric)."""

    item_id: str
    status: Literal["scored", "unscored"]
    score: Any
    """A score of the scale; a pairwise pair's 1.0 / 0.5 / 0.0 (A wins, tie, B wins); the
    verdict label of one order while a pair is judged."""
    feedback: str | None
    score_expected: float | None = None
    score_probs: dict[Any, float] | None = None
    raw: str | None = None
    """The model's raw text; always kept for unscored items."""
    reason: str | None = None
    """Why the item is unscored."""
    attempts: int = 1
    human_score: float | None = None
    """The item's human grade (the rubric's `human_field`), when it has one."""
    pair: dict[str, Any] | None = None
    """A pairwise rubric's keys: verdict, verdicts, consistent, first_position_wins,
    verdict_probs, system_a, system_b."""

    def record(self, rubric: Rubric) -> dict[str, Any]:
        """The result record, keyed by the rubric's names (`id_alumno`, `nota`, `feedback` for
        teacher-eval-ca), plus `status` and, when present, `score_expected`, `score_probs`,
        `raw`, `reason`, `human_score` and a pairwise rubric's keys."""
        out: dict[str, Any] = {
            rubric.id_field or "id": self.item_id,
            rubric.score_field: self.score,
            rubric.feedback_field: self.feedback,
            "status": self.status,
        }
        if self.pair is not None:
            out.update(self.pair)
        if self.score_expected is not None:
            out["score_expected"] = self.score_expected
        if self.score_probs is not None:
            out["score_probs"] = self.score_probs
        if self.human_score is not None:
            out["human_score"] = self.human_score
        if self.raw is not None:
            out["raw"] = self.raw
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def human_score(item: dict, rubric: Rubric, where: str) -> float | None:
    """The item's human grade (the rubric's `human_field`) as a float; None when the item has
    none (absent, null, or an empty CSV cell). Anything else not a finite number is an
    InvalidInputError naming the item and the field."""
    field = rubric.human_field
    value = item.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise InvalidInputError(
            f"{where}.{field} must be a number (the item's human grade, e.g. 4), got "
            f"{value!r:.40}; leave it out or null for an item without one"
        )
    return number
