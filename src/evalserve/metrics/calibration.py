"""Calibration: human targets for the loss, measured over a training set (seed 002).

``calibrate(path)`` reads (original, human) pairs, draws a deterministic random subset,
measures the five loss metrics on each human text against its original (relevance,
factuality, FKGL, SMOG, Dale-Chall), and writes their mean and population standard
deviation as JSON (``CalibrationTargets.to_dict``)::

    {"relevance": {"mean": 0.61, "std": 0.08}, "factuality": {...}, "fkgl": {...},
     "smog": {...}, "dale_chall": {...}, "n": 500, "meta": {"source": ..., "subset": 0.5,
     "seed": 0, "factuality_method": "alignscore", "lang": "en"}}

Input files: JSONL (one object per line), JSON (a list of objects) or CSV with a header.
The original text is read from the first present column among ``original``,
``texts_original``, ``source``; the human text from ``human``, ``texts_human``,
``summary``. Rows whose original or human text is missing or blank are skipped.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalserve.errors import InvalidInputError
from evalserve.metrics.targets import (
    METRICS,
    CalibrationTargets,
    FactualityFn,
    RelevanceFn,
    measure,
    targets_from_values,
)
from evalserve.records import TEXT_FIELDS, first_text, read_records

__all__ = ["ORIGINAL_COLUMNS", "HUMAN_COLUMNS", "read_pairs", "sample_indices", "calibrate"]

ORIGINAL_COLUMNS: tuple[str, ...] = TEXT_FIELDS["training_file"].reference
HUMAN_COLUMNS: tuple[str, ...] = TEXT_FIELDS["training_file"].prediction

ProgressFn = Callable[[int, int], Any]
"""``progress(done, total)``: called after every chunk of `chunk_size` items."""



def read_pairs(path: str | Path) -> tuple[list[str], list[str]]:
    """(originals, humans) from a JSONL/JSON/CSV training file (columns: module doc)."""
    p = Path(path)
    originals: list[str] = []
    humans: list[str] = []
    for row in read_records(p):
        original = first_text(row, ORIGINAL_COLUMNS)
        human = first_text(row, HUMAN_COLUMNS)
        if original is not None and human is not None:
            originals.append(original)
            humans.append(human)
    if not originals:
        raise InvalidInputError(
            f"no usable rows in {p}: each row needs an original text (column "
            f"{' / '.join(ORIGINAL_COLUMNS)}) and a human text ({' / '.join(HUMAN_COLUMNS)})"
        )
    return originals, humans


def sample_indices(n: int, subset: float, seed: int = 0) -> list[int]:
    """A deterministic sorted sample of ``max(1, round(subset * n))`` of ``range(n)``."""
    if isinstance(subset, bool) or not isinstance(subset, (int, float)) or not 0 < subset <= 1:
        raise InvalidInputError(f"subset must be in (0, 1], got {subset!r}")
    k = min(n, max(1, round(subset * n)))
    if k == n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), k))


def calibrate(
    path: str | Path,
    save_to: str | Path | None = "targets.json",
    subset: float = 0.5,
    chunk_size: int = 16,
    progress: ProgressFn | None = None,
    seed: int = 0,
    factuality_fn: FactualityFn | None = None,
    relevance_fn: RelevanceFn | None = None,
    lang: str = "en",
) -> CalibrationTargets:
    """Measure human targets over a training set and write them as JSON.

    Args:
        path: JSONL / JSON / CSV file of (original, human) pairs (columns: module doc).
        save_to: where to write the targets JSON; None to not write.
        subset: fraction in (0, 1] of the rows to use, drawn with `seed`.
        chunk_size: items measured per step; `progress` is called after each step.
        progress: ``progress(done, total)`` callback (e.g. a rich progress bar's update).
        seed: seed of the subset sampling (same file + subset + seed = same rows).
        factuality_fn: as in `loss` (default AlignScore, which needs a checkpoint).
        relevance_fn: as in `loss` (default BERTScore F1).
        lang: language of the human texts for readability.

    Returns:
        The `CalibrationTargets` written to `save_to`.

    Raises:
        InvalidInputError: unreadable file, no usable rows, bad subset or chunk size.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    originals, humans = read_pairs(path)
    picked = sample_indices(len(originals), subset, seed)
    total = len(picked)
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    method = "alignscore"
    for start in range(0, total, chunk_size):
        idx = picked[start : start + chunk_size]
        chunk_values, method = measure(
            [originals[i] for i in idx],
            [humans[i] for i in idx],
            relevance_fn,
            factuality_fn,
            lang,
        )
        for metric in METRICS:
            values[metric].extend(chunk_values[metric])
        if progress is not None:
            progress(min(start + chunk_size, total), total)
    targets = targets_from_values(
        values,
        {
            "source": str(path),
            "rows": len(originals),
            "subset": subset,
            "seed": seed,
            "factuality_method": method,
            "lang": lang,
        },
    )
    if save_to is not None:
        targets.save(save_to)
    return targets
