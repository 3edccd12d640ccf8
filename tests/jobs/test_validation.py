"""validate_items: every problem names the item and the field, before anything is stored."""

from __future__ import annotations

import pytest

from evalserve.errors import InvalidInputError
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.validation import validate_items
from tests.fakes import ScriptedEngine
from tests.jobs.helpers import item


@pytest.fixture(scope="module")
def grader():  # noqa: ANN201
    kit = JudgeKit()
    _, rubric = kit.load_rubric(None)
    return kit.grader(ScriptedEngine(lambda r: ""), rubric)


def check(grader, items, **limits):  # noqa: ANN001, ANN201
    return validate_items(items, grader, **{"max_items": 5, "max_field_chars": 100, **limits})


def test_valid_items_with_their_ids(grader) -> None:  # noqa: ANN001
    assert check(grader, [item(0), item(1)]) == [("A000", item(0)), ("A001", item(1))]


@pytest.mark.parametrize(("items", "message"), [
    ("text", "items must be a list"),
    ([], "items is empty"),
    ([item(i) for i in range(6)], "6 items exceed the limit of 5 per job (MAX_ITEMS_PER_JOB)"),
    ([item(0), 7], "items[1] must be an object"),
    ([item(0), {"id_alumno": "x"}], "items[1] lacks the field(s)"),
    ([item(0, nom="x")], "items[0] has unknown field(s) ['nom']"),
    ([{**item(0), "curso": {"a": 1}}], "items[0].curso must be a string"),
    ([item(0, respuesta="x" * 101)], "items[0].respuesta has 101 characters; the limit is 100"),
    ([item(0), item(1), item(0)], "items[2].id_alumno 'A000' repeats items[0]"),
])
def test_problems_name_item_and_field(grader, items, message) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInputError) as exc:
        check(grader, items)
    assert message in exc.value.message


@pytest.mark.parametrize(("value", "path", "shown"), [
    (float("nan"), "items[1].curso", "nan"),
    (float("inf"), "items[1].curso", "inf"),
    ({"a": [1, float("-inf")]}, "items[1].curso.a[1]", "-inf"),
])
def test_a_non_finite_number_is_refused_naming_item_and_field(
        grader, value, path: str, shown: str) -> None:  # noqa: ANN001
    """Defect (issue 11, item 7): an item with NaN or Infinity (which Python's json reads)
    was accepted; its results then held `NaN`, and the dashboard's `JSON.parse` broke."""
    with pytest.raises(InvalidInputError) as info:
        check(grader, [item(0), {**item(1), "curso": value}])
    assert info.value.message == (f"{path} is {shown}, which is not a JSON number; send a "
                                  "finite number, a string or null")
    assert info.value.status == 422
