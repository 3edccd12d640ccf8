"""The input checks every metric shares: each message names the field and says what to pass."""

from __future__ import annotations

import pytest

from evalserve.errors import InvalidInputError
from evalserve.metrics._validation import check_pairs, check_texts


def test_a_list_or_tuple_of_strings_comes_back_as_a_new_list() -> None:
    texts = ["a", "b"]
    checked = check_texts("predictions", texts)
    assert checked == ["a", "b"] and checked is not texts
    assert check_texts("predictions", ("a", "")) == ["a", ""]


@pytest.mark.parametrize(("name", "value", "message"), [
    ("predictions", "one text",
     "`predictions` must be a list of strings, got str; wrap a single text in a list: "
     "[prediction]"),
    ("references", b"bytes", "`references` must be a list of strings, got bytes; wrap a "
     "single text in a list: [reference]"),
    ("texts_human", {"a": 1}, "`texts_human` must be a list of strings, got dict; wrap a "
     "single text in a list: [texts_human]"),
    ("predictions", None, "`predictions` must be a list of strings, got NoneType"),
    ("predictions", (t for t in ["a"]), "`predictions` must be a list of strings, got "
     "generator"),
])
def test_not_a_list_names_the_field_and_how_to_wrap_it(name: str, value: object,
                                                       message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_texts(name, value)
    assert info.value.message.startswith(message)
    assert info.value.status == 422


def test_an_empty_list_names_the_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        check_texts("sources", [])
    assert info.value.message == "`sources` is empty: pass at least one text"


@pytest.mark.parametrize(("value", "message"), [
    (["ok", 3], "`predictions[1]` is int, expected a string"),
    ([None], "`predictions[0]` is NoneType, expected a string"),
    (["ok", "ok", ["nested"]], "`predictions[2]` is list, expected a string"),
])
def test_a_non_string_item_is_named_by_its_index(value: list, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_texts("predictions", value)
    assert info.value.message == message


def test_pairs_of_equal_length_come_back_as_lists() -> None:
    assert check_pairs("predictions", ("a", "b"), "references", ["x", "y"]) == (
        ["a", "b"], ["x", "y"])


def test_pairs_of_different_length_name_both_fields() -> None:
    with pytest.raises(InvalidInputError) as info:
        check_pairs("predictions", ["a", "b", "c"], "references", ["x"])
    assert info.value.message == (
        "`predictions` has 3 texts but `references` has 1: pass exactly one item of "
        "`references` per item of `predictions`")


@pytest.mark.parametrize(("first", "second", "message"), [
    ("text", ["x"], "`predictions` must be a list of strings"),
    (["a"], [], "`references` is empty"),
    (["a"], [1], "`references[0]` is int"),
])
def test_pairs_check_each_list_first(first: object, second: object, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_pairs("predictions", first, "references", second)
    assert info.value.message.startswith(message)
