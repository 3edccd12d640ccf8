"""Calibration over a training file: formats, column names, sampling, progress, output."""

from __future__ import annotations

import csv
import json

import pytest

from evalserve.errors import InvalidInputError
from evalserve.metrics import CalibrationTargets, calibrate, read_pairs, readability
from evalserve.metrics.calibration import sample_indices


def fake_relevance(originals, texts):
    return [len(t) % 7 / 7 for t in texts]


def fake_factuality(originals, texts):
    return [len(o) % 5 / 5 for o in originals]


def rows(n: int) -> list[tuple[str, str]]:
    return [
        (f"Original text number {i} about medicine and patients.",
         f"Human summary {i}." + " It is simple." * (i % 4))
        for i in range(n)
    ]


def write_jsonl(path, data, ocol="original", hcol="human") -> None:
    path.write_text("\n".join(json.dumps({ocol: o, hcol: h}) for o, h in data) + "\n")


@pytest.mark.parametrize(
    ("ocol", "hcol"),
    [("original", "human"), ("texts_original", "texts_human"), ("source", "summary")],
)
def test_column_names(tmp_path, ocol: str, hcol: str) -> None:
    path = tmp_path / "train.jsonl"
    write_jsonl(path, rows(3), ocol, hcol)
    originals, humans = read_pairs(path)
    assert originals == [o for o, _ in rows(3)]
    assert humans == [h for _, h in rows(3)]


def test_csv_and_json(tmp_path) -> None:
    csv_path = tmp_path / "train.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["texts_original", "texts_human", "other"])
        for o, h in rows(4):
            writer.writerow([o, h, "x"])
    json_path = tmp_path / "train.json"
    json_path.write_text(json.dumps([{"source": o, "summary": h} for o, h in rows(4)]))
    assert read_pairs(csv_path) == read_pairs(json_path)


def test_calibrate_writes_targets_of_the_sampled_rows(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    data = rows(40)
    write_jsonl(path, data)
    calls: list[tuple[int, int]] = []
    out = tmp_path / "out" / "targets.json"
    targets = calibrate(path, save_to=out, subset=0.5, chunk_size=8,
                        progress=lambda done, total: calls.append((done, total)),
                        factuality_fn=fake_factuality, relevance_fn=fake_relevance)
    assert calls == [(8, 20), (16, 20), (20, 20)]
    picked = sample_indices(40, 0.5, seed=0)
    humans = [data[i][1] for i in picked]
    assert targets.n == 20
    assert targets.fkgl.mean == pytest.approx(readability(humans).mean.fkgl)
    assert targets.relevance.mean == pytest.approx(sum(fake_relevance(None, humans)) / 20)
    assert targets.meta["subset"] == 0.5
    assert CalibrationTargets.load(out) == targets


def test_sampling_is_deterministic() -> None:
    assert sample_indices(100, 0.3, seed=1) == sample_indices(100, 0.3, seed=1)
    assert sample_indices(100, 0.3, seed=1) != sample_indices(100, 0.3, seed=2)
    assert len(sample_indices(100, 0.3)) == 30
    assert sample_indices(10, 1.0) == list(range(10))
    assert len(sample_indices(3, 0.01)) == 1


def test_real_relevance_calibration(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    write_jsonl(path, rows(4))
    targets = calibrate(path, save_to=None, subset=1.0, factuality_fn=fake_factuality)
    assert 0.3 < targets.relevance.mean <= 1.0
    assert not (tmp_path / "targets.json").exists()


@pytest.mark.parametrize("subset", [0, -0.5, 1.5, "half"])
def test_bad_subset(tmp_path, subset) -> None:
    path = tmp_path / "train.jsonl"
    write_jsonl(path, rows(4))
    with pytest.raises(InvalidInputError, match="subset"):
        calibrate(path, save_to=None, subset=subset, factuality_fn=fake_factuality,
                  relevance_fn=fake_relevance)


def test_bad_files(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        read_pairs(tmp_path / "missing.jsonl")
    wrong = tmp_path / "wrong.jsonl"
    write_jsonl(wrong, rows(2), "text", "label")
    with pytest.raises(InvalidInputError, match="texts_original"):
        read_pairs(wrong)
    other = tmp_path / "data.parquet"
    other.write_text("x")
    with pytest.raises(InvalidInputError, match="jsonl"):
        read_pairs(other)
    with pytest.raises(InvalidInputError, match="chunk_size"):
        calibrate(wrong, chunk_size=0)
