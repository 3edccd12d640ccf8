"""`/predict` wire models: the one error message a wrong `prompt` gets, and the status shape."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from evalserve.server.protocol.predict import PredictRequest, PredictResponse, ServiceStatus


def only_error(data: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as info:
        PredictRequest.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors  # one message, not pydantic's per-union-member pair
    return errors[0]


@pytest.mark.parametrize("prompt", ["a question", "", ["one", "two"], []])
def test_strings_and_flat_lists_of_strings_pass_unchanged(prompt: str | list[str]) -> None:
    assert PredictRequest.model_validate({"prompt": prompt}).prompt == prompt


def test_unknown_fields_are_ignored() -> None:
    body = PredictRequest.model_validate({"prompt": "q", "max_tokens": 5, "model": "x"})
    assert body.model_dump() == {"prompt": "q"}


@pytest.mark.parametrize(("value", "kind"), [
    (None, "null"), (3, "int"), (1.5, "float"), (True, "bool"), ({"text": "q"}, "dict"),
])
def test_wrong_prompt_type_names_what_was_sent_and_what_to_send(value: Any, kind: str) -> None:
    error = only_error({"prompt": value})
    assert error["loc"] == ("prompt",) and error["type"] == "prompt_type"
    assert error["msg"] == (
        f"must be a string (or, with BATCH_MODE=1, a list of strings), got {kind}")


@pytest.mark.parametrize(("items", "index", "kind"), [
    (["a", ["b"]], 1, "a list"), ([3, "a"], 0, "int"), (["a", "b", None], 2, "NoneType"),
    (["a", {"x": 1}], 1, "dict"),
])
def test_a_non_string_item_is_named_by_index(items: list[Any], index: int, kind: str) -> None:
    error = only_error({"prompt": items})
    assert error["type"] == "prompt_item"
    assert error["msg"] == f"item {index} must be a string, got {kind}: send a flat list of strings"


def test_prompt_is_required() -> None:
    error = only_error({})
    assert (error["loc"], error["type"]) == (("prompt",), "missing")


def test_response_and_status_shapes() -> None:
    assert PredictResponse(response=["a", "b"]).model_dump() == {"response": ["a", "b"]}
    assert ServiceStatus(status="loading").model_dump() == {"status": "loading", "message": None}
    with pytest.raises(ValidationError):
        ServiceStatus(status="ready")
