"""The one padded-batch helper of BERTScore and AlignScore."""

from __future__ import annotations

from evalserve.metrics._batching import padded_batches


def test_batches_are_longest_first_padded_and_masked() -> None:
    seqs = [[1, 2], [3, 4, 5, 6], [7], [8, 9, 10]]
    batches = list(padded_batches(seqs, batch_size=3, pad_id=0))
    assert [b[0] for b in batches] == [[1, 3, 0], [2]]
    indices, ids, mask = batches[0]
    assert ids.tolist() == [[3, 4, 5, 6], [8, 9, 10, 0], [1, 2, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]]
    assert batches[1][1].tolist() == [[7]] and batches[1][2].tolist() == [[1]]
    assert list(padded_batches([], batch_size=4, pad_id=1)) == []
