"""LLM-as-a-judge: rubrics, prompts, constrained answers that always parse, and grades.

    rubric = load_rubric("teacher-eval-ca")
    judge = Judge(engine, rubric)
    grade = await judge.grade({"id_alumno": "A1", "curso": "3r ESO", "consigna": ...})
    grade.record(rubric)  # {"id_alumno": "A1", "nota": 4, "feedback": "...", "status": "scored"}
"""

from __future__ import annotations

from evalserve.judge.judge import Grade, Judge
from evalserve.judge.promptfile import rubric_from_prompt_file
from evalserve.judge.rubric import Rubric, list_rubrics, load_rubric, load_rubric_file

__all__ = [
    "Grade",
    "Judge",
    "Rubric",
    "list_rubrics",
    "load_rubric",
    "load_rubric_file",
    "rubric_from_prompt_file",
]
