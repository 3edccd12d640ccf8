"""Check a whole submission before anything is stored: every problem names the item and field."""

from __future__ import annotations

import math
from typing import Any

from evalserve.errors import InvalidInputError
from evalserve.jobs.grading import Grader

__all__ = ["validate_items"]


def validate_items(
    items: Any, grader: Grader, *, max_items: int, max_field_chars: int
) -> list[tuple[str, dict[str, Any]]]:
    """`[(item_id, item)]` for a valid list; `InvalidInputError` for the first problem found:
    an empty or too long list, a non-object item, a missing/extra/wrong-typed field (the judge's
    check), a non-finite number (NaN, Infinity: not JSON, they would break every client that
    parses the job's results), a field over `MAX_FIELD_CHARS`, or an id used twice."""
    if not isinstance(items, list):
        raise InvalidInputError("items must be a list of objects, one per text to grade")
    if not items:
        raise InvalidInputError("items is empty: send at least one item to grade")
    if len(items) > max_items:
        raise InvalidInputError(
            f"{len(items)} items exceed the limit of {max_items} per job (MAX_ITEMS_PER_JOB); "
            "split them into several jobs"
        )
    seen: dict[str, int] = {}
    out: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInputError(
                f"items[{index}] must be an object with the rubric's fields, "
                f"not {type(item).__name__}"
            )
        _check_finite(item, f"items[{index}]")
        grader.validate_item(item, index)
        for key, value in item.items():
            if isinstance(value, str) and len(value) > max_field_chars:
                raise InvalidInputError(
                    f"items[{index}].{key} has {len(value)} characters; the limit is "
                    f"{max_field_chars} (MAX_FIELD_CHARS): shorten the text"
                )
        item_id = grader.item_id(item, index)
        if item_id in seen:
            field = grader.rubric.id_field or "id"
            raise InvalidInputError(
                f"items[{index}].{field} {item_id!r} repeats items[{seen[item_id]}]; "
                "every item needs a unique id"
            )
        seen[item_id] = index
        out.append((item_id, item))
    return out


def _check_finite(item: dict[str, Any], where: str) -> None:
    """Refuse NaN and +-Infinity anywhere in `item` (Python's json reads and writes them)."""
    stack: list[tuple[str, Any]] = [(f"{where}.{k}", v) for k, v in item.items()]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(
                f"{path} is {value}, which is not a JSON number; send a finite number, "
                "a string or null")
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
