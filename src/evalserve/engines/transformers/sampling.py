"""Turn a batch of next-token logits into tokens: penalties, constraint mask, temperature,
top-p, seeded sampling and log-probabilities.

Log-probabilities are those of the distribution after penalties and the output constraint,
before temperature and top-p: under a constraint they are spread over the tokens the grammar
allows, which is what a probability-weighted score needs.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from typing import TYPE_CHECKING, Any

from evalserve.engines.base import TokenLogprob

if TYPE_CHECKING:
    from evalserve.engines.transformers.constraints import GrammarFactory
    from evalserve.engines.transformers.sequence import Sequence

__all__ = ["sample_next_tokens"]


def _apply_penalties(torch: Any, logits: Any, row: int, seq: Sequence) -> None:
    req = seq.request
    if req.repetition_penalty != 1.0:
        seen = torch.tensor(sorted(set(seq.prompt_ids) | set(seq.output_ids)), dtype=torch.long)
        values = logits[row, seen]
        values = torch.where(
            values > 0, values / req.repetition_penalty, values * req.repetition_penalty
        )
        logits[row, seen] = values
    if (req.presence_penalty or req.frequency_penalty) and seq.output_ids:
        ids, counts = torch.tensor(seq.output_ids, dtype=torch.long).unique(return_counts=True)
        logits[row, ids] -= req.frequency_penalty * counts.to(logits.dtype) + req.presence_penalty


def _top_p_sample(torch: Any, logits_row: Any, seq: Sequence) -> int:
    req = seq.request
    probs = torch.softmax(logits_row / req.temperature, dim=-1)
    if req.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        cumulative = sorted_probs.cumsum(-1)
        keep = cumulative - sorted_probs < req.top_p
        keep[0] = True
        sorted_probs = sorted_probs * keep
        choice = torch.multinomial(sorted_probs, 1, generator=seq.generator)
        return int(order[choice])
    return int(torch.multinomial(probs, 1, generator=seq.generator))


def sample_next_tokens(
    logits: Any,
    seqs: Seq[Sequence],
    grammars: GrammarFactory | None,
    token_text: Any,
) -> list[tuple[int, TokenLogprob | None]]:
    """Choose one token per row of `logits` ([rows, vocab], float32, modified in place)."""
    import torch

    logits = logits.float()
    for row, seq in enumerate(seqs):
        _apply_penalties(torch, logits, row, seq)
    constrained = [i for i, s in enumerate(seqs) if s.matcher is not None]
    if constrained and grammars is not None:
        bitmask = grammars.allocate_bitmask(len(seqs))
        for i in constrained:
            seqs[i].matcher.fill_next_token_bitmask(bitmask, i)
        grammars.apply_bitmask(logits, bitmask, constrained)
    want_logprobs = [s.request.logprobs is not None for s in seqs]
    logprobs = torch.log_softmax(logits, dim=-1) if any(want_logprobs) else None
    greedy = logits.argmax(dim=-1).tolist()
    chosen: list[tuple[int, TokenLogprob | None]] = []
    for row, seq in enumerate(seqs):
        token = greedy[row] if seq.greedy else _top_p_sample(torch, logits[row], seq)
        entry = None
        if logprobs is not None and want_logprobs[row]:
            k = seq.request.logprobs or 0
            top: list[tuple[str, float]] = []
            if k:
                values, ids = logprobs[row].topk(k)
                top = [(token_text(i), float(v)) for i, v in zip(ids.tolist(), values.tolist())]
            entry = TokenLogprob(token_text(token), float(logprobs[row, token]), top)
        chosen.append((token, entry))
    return chosen
