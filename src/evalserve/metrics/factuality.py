"""Factuality as AlignScore (Zha et al., ACL 2023), without the unmaintained package.

``factuality(originals, generated)`` scores how well each generated text is supported by
its original, in [0, 1], the way the AlignScore project's default ``nli_sp`` mode does:

1. The context (original) is split into sentences, which are grouped into chunks of
   consecutive sentences: ``n = words(context) // 350 + 1`` target chunks, so each chunk
   holds ``max(sentences // n, 1)`` sentences (about 350 words).
2. The claim (generated text) is split into sentences.
3. Every (chunk, claim sentence) pair goes through the checkpoint's RoBERTa + ``tri_layer``
   head on the pooler output; the score of a pair is ``softmax(logits)[0]`` (the "aligned"
   class). Inputs are ``<s> chunk </s></s> sentence </s>``, the chunk truncated first to the
   tokenizer's ``model_max_length``.
4. Each claim sentence keeps its best chunk (max over chunks); the item's score is the mean
   over claim sentences.

Differences from the original code, none of which changes a score: sentences are split by
``evalserve.metrics.sentences`` (a regex splitter; the original needs NLTK's punkt data,
a download), batches are padded to their longest pair instead of to 512 tokens (RoBERTa
ignores padding, so the numbers are the same and much faster), pairs from all items are
batched together, and an empty context or claim is scored as the empty string ``""``
instead of crashing.

Configuration (no downloads at run time): ``ckpt`` is the AlignScore ``.ckpt`` (Lightning
checkpoint; default ``$ALIGNSCORE_CKPT``) and ``roberta_dir`` a local directory holding the
backbone's ``config.json`` and tokenizer files, ``roberta-base`` for AlignScore-base,
``roberta-large`` for AlignScore-large (default ``$ALIGNSCORE_ROBERTA_DIR``). Missing either
raises ``ConfigurationError``; the server may then fall back to an LLM judge and report it
through ``FactualityResult.method``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics._batching import padded_batches
from evalserve.metrics._validation import check_pairs
from evalserve.metrics.sentences import split_sentences

__all__ = [
    "FactualityResult",
    "AlignScorer",
    "factuality",
    "chunk_context",
    "claim_sentences",
    "load_scorer",
    "CKPT_ENV",
    "ROBERTA_DIR_ENV",
]

logger = logging.getLogger(__name__)

CKPT_ENV = "ALIGNSCORE_CKPT"
ROBERTA_DIR_ENV = "ALIGNSCORE_ROBERTA_DIR"
WORDS_PER_CHUNK = 350


@dataclass(frozen=True)
class FactualityResult:
    """Per-item factuality in [0, 1], the mean, and how it was computed.

    ``method`` is ``"alignscore"`` here; a fallback (e.g. the server's LLM judge) sets
    its own name, such as ``"llm_judge"``.
    """

    scores: list[float]
    mean: float
    method: str = "alignscore"


def chunk_context(context: str, words_per_chunk: int = WORDS_PER_CHUNK) -> list[str]:
    """AlignScore's context chunks: consecutive sentences, about `words_per_chunk` words each."""
    sentences = split_sentences(context) or [""]
    n_chunks = len(context.strip().split()) // words_per_chunk + 1
    per_chunk = max(len(sentences) // n_chunks, 1)
    return [" ".join(sentences[i : i + per_chunk]) for i in range(0, len(sentences), per_chunk)]


def claim_sentences(claim: str) -> list[str]:
    """The claim's sentences (``[""]`` for an empty claim, so it is still scored)."""
    return split_sentences(claim) or [""]


class AlignScorer:
    """A loaded AlignScore checkpoint: RoBERTa + heads, tokenizer, device.

    Attributes:
        ignored_keys: checkpoint entries not used for scoring (the MLM head, id buffers).
    """

    def __init__(
        self,
        ckpt: str | Path,
        roberta_dir: str | Path,
        device: str | None = None,
        batch_size: int = 32,
    ) -> None:
        import torch
        from transformers import AutoConfig, AutoTokenizer

        from evalserve.metrics._alignscore import build_model, read_state_dict

        roberta = Path(roberta_dir)
        if not (roberta / "config.json").is_file():
            raise ConfigurationError(
                f"no RoBERTa config at {str(roberta)!r}: set {ROBERTA_DIR_ENV} (or pass "
                "roberta_dir) to a local roberta-base (AlignScore-base) or roberta-large "
                "(AlignScore-large) directory with config.json and the tokenizer files"
            )
        try:
            config = AutoConfig.from_pretrained(roberta, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(roberta, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load the RoBERTa files at {roberta}: {exc}") from exc
        state = read_state_dict(ckpt)
        self.model, self.ignored_keys = build_model(state, config)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.batch_size = batch_size
        limit = self.tokenizer.model_max_length
        if not limit or limit > 100_000:
            limit = config.max_position_embeddings - 2
        self.max_length = int(limit)

    def _encode(self, premise: str, hypothesis: str) -> list[int]:
        try:
            return self.tokenizer(
                premise, hypothesis, truncation="only_first", max_length=self.max_length
            )["input_ids"]
        except Exception:  # noqa: BLE001 - the claim sentence alone is too long
            return self.tokenizer(
                premise, hypothesis, truncation="longest_first", max_length=self.max_length
            )["input_ids"]

    def nli_probs(self, premises: Sequence[str], hypotheses: Sequence[str]) -> list[float]:
        """P(aligned) from the 3-way head for each (premise, hypothesis) pair."""
        import torch

        encoded = [self._encode(p, h) for p, h in zip(premises, hypotheses)]
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 1
        probs = [0.0] * len(encoded)
        with torch.inference_mode():
            for chunk, ids, mask in padded_batches(encoded, self.batch_size, pad_id):
                logits = self.model(ids.to(self.device), mask.to(self.device))
                aligned = torch.softmax(logits.float(), dim=-1)[:, 0].cpu().tolist()
                for i, p in zip(chunk, aligned):
                    probs[i] = p
        return probs

    def score(self, contexts: Sequence[str], claims: Sequence[str]) -> list[float]:
        """``nli_sp`` scores: max over context chunks, mean over claim sentences."""
        premises: list[str] = []
        hypotheses: list[str] = []
        shapes: list[tuple[int, int]] = []
        for context, claim in zip(contexts, claims):
            chunks = chunk_context(context)
            sents = claim_sentences(claim)
            shapes.append((len(chunks), len(sents)))
            for c in chunks:
                for s in sents:
                    premises.append(c)
                    hypotheses.append(s)
        probs = self.nli_probs(premises, hypotheses)
        scores = []
        pos = 0
        for n_chunks, n_sents in shapes:
            block = probs[pos : pos + n_chunks * n_sents]
            pos += n_chunks * n_sents
            best = [max(block[c * n_sents + s] for c in range(n_chunks)) for s in range(n_sents)]
            scores.append(fmean(best))
        return scores


_SCORERS: dict[tuple[str, str, str | None, int], AlignScorer] = {}
_LOCK = threading.Lock()


def _setting(value: str | Path | None, env: str, what: str) -> str:
    chosen = value if value is not None else os.environ.get(env)
    if not chosen:
        raise ConfigurationError(
            f"AlignScore factuality needs {what}: set {env} or pass it explicitly "
            "(or use an LLM-judge factuality instead)"
        )
    return str(Path(chosen).expanduser().resolve())


def load_scorer(
    ckpt: str | Path | None = None,
    roberta_dir: str | Path | None = None,
    device: str | None = None,
    batch_size: int = 32,
) -> AlignScorer:
    """The process-wide `AlignScorer` for this checkpoint, backbone and device (cached)."""
    ckpt_path = _setting(ckpt, CKPT_ENV, "a checkpoint (.ckpt)")
    roberta = _setting(roberta_dir, ROBERTA_DIR_ENV, "a local RoBERTa directory")
    key = (ckpt_path, roberta, device, batch_size)
    with _LOCK:
        scorer = _SCORERS.get(key)
        if scorer is None:
            scorer = AlignScorer(ckpt_path, roberta, device=device, batch_size=batch_size)
            _SCORERS[key] = scorer
        return scorer


def factuality(
    originals: Sequence[str],
    generated: Sequence[str],
    ckpt: str | Path | None = None,
    roberta_dir: str | Path | None = None,
    batch_size: int = 32,
    device: str | None = None,
) -> FactualityResult:
    """AlignScore (``nli_sp``) of each generated text against its original.

    Args:
        originals: the contexts (source texts).
        generated: the claims to check, one per original.
        ckpt: AlignScore checkpoint path; default ``$ALIGNSCORE_CKPT``.
        roberta_dir: local RoBERTa directory (config + tokenizer); default
            ``$ALIGNSCORE_ROBERTA_DIR``.
        batch_size: (chunk, sentence) pairs per forward pass.
        device: ``"cpu"``, ``"cuda"``...; default: CUDA when available.

    Returns:
        ``FactualityResult`` with scores in [0, 1], their mean and ``method="alignscore"``.

    Raises:
        InvalidInputError: empty or mismatched lists, bad batch size.
        ConfigurationError: no checkpoint or RoBERTa directory, or they do not match.
    """
    contexts, claims = check_pairs("originals", originals, "generated", generated)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    scorer = load_scorer(ckpt, roberta_dir, device=device, batch_size=batch_size)
    scores = scorer.score(contexts, claims)
    return FactualityResult(scores, fmean(scores), "alignscore")

