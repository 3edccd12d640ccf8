"""How jobs reach the judge: load a rubric, build a judge, grade one item into a result row.

`JudgeKit` is the only place `jobs` touches `evalserve.judge`; tests may pass a stand-in with
the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalserve.engines.base import Engine
from evalserve.errors import error_body

__all__ = ["JudgeKit", "Grader", "DEFAULT_RUBRIC"]

#: The rubric of seed 000 (Catalan feedback adapted to the student's course, score 0-5).
DEFAULT_RUBRIC = "teacher-eval-ca"


@dataclass
class Grader:
    """A judge bound to its rubric, for one job."""

    judge: Any
    rubric: Any

    def validate_item(self, item: dict[str, Any], index: int) -> None:
        self.judge.validate_item(item, index)

    def item_id(self, item: dict[str, Any], index: int) -> str:
        return str(self.judge.item_id(item, index))

    async def grade(self, item: dict[str, Any], index: int) -> tuple[str, float | None, dict]:
        """`(status, score, record)`; the record is keyed by the rubric's names."""
        grade = await self.judge.grade(item, index)
        return grade.status, grade.score, grade.record(self.rubric)

    def failed_record(self, item_id: str, reason: str) -> dict[str, Any]:
        """The record of an item the engine refused (e.g. a prompt longer than MAX_MODEL_LEN)."""
        r = self.rubric
        return {r.id_field or "id": item_id, r.score_field: None, r.feedback_field: None,
                "status": "unscored", "reason": reason}

    def error_record(self, item_id: str, exc: BaseException, attempts: int) -> dict[str, Any]:
        """The record of an item whose grading failed `attempts` times (`status: "error"`):
        the reason and the error envelope (`errors.error_body`) say why."""
        body = error_body(exc)
        r = self.rubric
        return {r.id_field or "id": item_id, r.score_field: None, r.feedback_field: None,
                "status": "error", "reason": body["message"], "error": body,
                "attempts": attempts}


class JudgeKit:
    """Rubric loading and judge construction, from `evalserve.judge`."""

    def __init__(self, rubrics_dir: Path | None = None, *, max_tokens: int | None = None,
                 temperature: float = 0.0, retries: int = 2, seed: int | None = None) -> None:
        self.rubrics_dir = rubrics_dir
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.retries = retries
        self.seed = seed

    @classmethod
    def from_settings(cls, settings: Any) -> JudgeKit:
        """Rubrics from `RUBRICS_DIR`; an explicitly set `MAX_NEW_TOKENS` caps the judge's
        output budget (else each rubric's own)."""
        explicit = "max_new_tokens" in settings.model_fields_set
        return cls(settings.rubrics_dir,
                   max_tokens=settings.max_new_tokens if explicit else None)

    def load_rubric(self, spec: str | dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """`(name, canonical dict)` of the rubric a request names or inlines; `NotFoundError` or
        `InvalidInputError` saying what is wrong."""
        from evalserve.judge.rubric import load_rubric

        rubric = load_rubric(spec if spec is not None else DEFAULT_RUBRIC, self.rubrics_dir)
        return rubric.name, rubric.model_dump(mode="json")

    def grader(self, engine: Engine, rubric: dict[str, Any]) -> Grader:
        """A judge for a stored rubric dict."""
        from evalserve.judge.judge import Judge
        from evalserve.judge.rubric import Rubric

        model = Rubric.model_validate(rubric)
        judge = Judge(engine, model, temperature=self.temperature, max_tokens=self.max_tokens,
                      retries=self.retries, seed=self.seed)
        return Grader(judge, model)
