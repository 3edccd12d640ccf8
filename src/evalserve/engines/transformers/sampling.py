"""Turn a batch of next-token logits into tokens: penalties, constraint mask, temperature,
top-p, seeded sampling and log-probabilities.

Log-probabilities are those of the distribution after penalties and the output constraint,
before temperature and top-p: under a constraint they are spread over the tokens the grammar
allows, which is what a probability-weighted score needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq
from typing import TYPE_CHECKING, Any, cast

from evalserve.engines.base import TokenLogprob

if TYPE_CHECKING:
    from evalserve.engines.transformers.constraints import GrammarFactory
    from evalserve.engines.transformers.sequence import Sequence

__all__ = ["sample_next_tokens", "Choice"]

#: A row's outcome: (token, logprob entry or None), or the exception that row raised. A
#: failure belongs to its sequence alone; the other rows of the batch are sampled as usual.
Choice = tuple[int, TokenLogprob | None] | Exception


def _apply_penalties(torch: Any, logits: Any, row: int, seq: Sequence) -> None:
    req = seq.request
    if req.repetition_penalty != 1.0:
        seen = torch.tensor(sorted(set(seq.prompt_ids) | set(seq.output_ids)), dtype=torch.long)
        # float64, then clamped: a penalty such as 1e-300 is 0 in float32 and would turn the
        # seen logits into inf (then NaN under softmax)
        values = logits[row, seen].double()
        values = torch.where(
            values > 0, values / req.repetition_penalty, values * req.repetition_penalty
        )
        limit = torch.finfo(logits.dtype).max
        logits[row, seen] = values.clamp(-limit, limit).to(logits.dtype)
    if (req.presence_penalty or req.frequency_penalty) and seq.output_ids:
        ids, counts = torch.tensor(seq.output_ids, dtype=torch.long).unique(return_counts=True)
        logits[row, ids] -= req.frequency_penalty * counts.to(logits.dtype) + req.presence_penalty


def _top_p_sample(torch: Any, logits_row: Any, seq: Sequence) -> int:
    req = seq.request
    # Shifted by the row's maximum before the division, so that a large logit over a small
    # temperature cannot overflow: the best token is exp(0) and the others underflow to 0.
    probs = torch.softmax((logits_row - logits_row.max()) / req.temperature, dim=-1)
    if req.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        cumulative = sorted_probs.cumsum(-1)
        keep = cumulative - sorted_probs < req.top_p
        keep[0] = True
        sorted_probs = sorted_probs * keep
        choice = torch.multinomial(sorted_probs, 1, generator=seq.generator)
        return int(order[choice])
    return int(torch.multinomial(probs, 1, generator=seq.generator))


def _guarded(results: list[Choice | None], row: int, step: Any, *args: Any) -> None:
    """Run one row's step; an exception becomes that row's result."""
    if results[row] is not None:
        return
    try:
        step(*args)
    except Exception as exc:  # this row only: the others go on
        results[row] = exc


def _mask(logits: Any, seqs: Seq[Sequence], grammars: GrammarFactory | None,
          results: list[Choice | None]) -> None:
    constrained = [i for i, s in enumerate(seqs) if s.matcher is not None and results[i] is None]
    if not constrained or grammars is None:
        return
    try:
        bitmask = grammars.allocate_bitmask(len(seqs))
    except Exception as exc:
        for i in constrained:
            results[i] = exc
        return
    for i in constrained:
        _guarded(results, i, seqs[i].matcher.fill_next_token_bitmask, bitmask, i)
    rows = [i for i in constrained if results[i] is None]
    if rows:
        try:
            grammars.apply_bitmask(logits, bitmask, rows)
        except Exception as exc:  # the mask of these rows is unknown: they cannot go on
            for i in rows:
                results[i] = exc


def _entry(logprobs_row: Any, token: int, k: int, token_text: Any) -> TokenLogprob:
    top: list[tuple[str, float]] = []
    if k:
        values, ids = logprobs_row.topk(k)
        # a token masked by the constraint has logprob -inf: not an alternative, and not
        # representable in JSON
        top = [(token_text(i), float(v)) for i, v in zip(ids.tolist(), values.tolist())
               if math.isfinite(v)]
    return TokenLogprob(token_text(token), float(logprobs_row[token]), top)


def sample_next_tokens(
    logits: Any,
    seqs: Seq[Sequence],
    grammars: GrammarFactory | None,
    token_text: Any,
) -> list[Choice]:
    """Choose one token per row of `logits` ([rows, vocab], float32, modified in place).

    Each row is isolated: whatever its penalties, grammar matcher or sampling raise is
    returned as that row's result, and the other rows are chosen as if it were not there.
    """
    import torch

    logits = logits.float()
    results: list[Choice | None] = [None] * len(seqs)
    for row, seq in enumerate(seqs):
        _guarded(results, row, _apply_penalties, torch, logits, row, seq)
    _mask(logits, seqs, grammars, results)
    want_logprobs = [s.request.logprobs is not None for s in seqs]
    logprobs = torch.log_softmax(logits, dim=-1) if any(want_logprobs) else None
    greedy = logits.argmax(dim=-1).tolist()
    for row, seq in enumerate(seqs):
        if results[row] is not None:
            continue
        try:
            token = greedy[row] if seq.greedy else _top_p_sample(torch, logits[row], seq)
            entry = None
            if logprobs is not None and want_logprobs[row]:
                entry = _entry(logprobs[row], token, seq.request.logprobs or 0, token_text)
            results[row] = (token, entry)
        except Exception as exc:
            results[row] = exc
    return cast("list[Choice]", results)  # every row was set above
