"""Input checks shared by every metric: lists of strings, paired lists of equal length."""

from __future__ import annotations

from collections.abc import Sequence

from evalserve.errors import InvalidInputError

__all__ = ["check_texts", "check_pairs"]


def check_texts(name: str, texts: object) -> list[str]:
    """Return `texts` as a list of strings, or raise `InvalidInputError` saying what to fix."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidInputError(
            f"`{name}` must be a list of strings, got {type(texts).__name__}; "
            f"wrap a single text in a list: [{name[:-1] if name.endswith('s') else name}]"
        )
    if len(texts) == 0:
        raise InvalidInputError(f"`{name}` is empty: pass at least one text")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"`{name}[{i}]` is {type(text).__name__}, expected a string"
            )
    return out


def check_pairs(
    first_name: str, first: object, second_name: str, second: object
) -> tuple[list[str], list[str]]:
    """Check two paired text lists (non-empty, strings, same length) and return them as lists."""
    a = check_texts(first_name, first)
    b = check_texts(second_name, second)
    if len(a) != len(b):
        raise InvalidInputError(
            f"`{first_name}` has {len(a)} texts but `{second_name}` has {len(b)}: "
            f"pass exactly one item of `{second_name}` per item of `{first_name}`"
        )
    return a, b
