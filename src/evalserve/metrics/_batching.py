"""Padded torch batches of token-id sequences, longest first (BERTScore and AlignScore).

Sorting by length makes each batch as narrow as its first (longest) sequence, so little
compute goes to padding; the attention mask hides the padding, so scores are those of
unpadded inputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["padded_batches"]


def padded_batches(
    sequences: Sequence[Sequence[int]], batch_size: int, pad_id: int
) -> Iterator[tuple[list[int], Any, Any]]:
    """``(indices, input_ids, attention_mask)`` per batch of at most `batch_size` sequences.

    `indices` are the positions in `sequences` of the batch's rows (longest first); the
    tensors are ``long`` CPU tensors of shape ``(len(indices), longest)``, padded with
    `pad_id` and masked with 0.
    """
    import torch

    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = len(sequences[chunk[0]])
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            seq = sequences[i]
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        yield chunk, input_ids, mask
