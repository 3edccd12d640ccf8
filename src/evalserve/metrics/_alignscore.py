"""The AlignScore network and checkpoint loader (imports torch; loaded lazily by factuality).

Architecture of the AlignScore project's ``BERTAlignModel`` for RoBERTa backbones: a
``RobertaModel`` *with* its pooler (``base_model``), an MLM head (``mlm_head``, only used in
training) and three linear heads on the pooler output: ``bin_layer`` (2-way),
``tri_layer`` (3-way NLI: aligned / contradict / neutral) and ``reg_layer`` (regression).
Dropout sits before ``bin_layer`` and ``tri_layer`` during training; at inference it is the
identity, so it is left out here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evalserve.errors import ConfigurationError

logger = logging.getLogger(__name__)

# Checkpoint entries that are not weights of the scoring network: the MLM head (training
# only) and position/token-type id buffers older transformers versions saved.
_IGNORED_PREFIXES = ("mlm_head.",)
_IGNORED_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")


class AlignModel(nn.Module):
    """RoBERTa encoder with pooler plus AlignScore's three classification heads."""

    def __init__(self, config: Any) -> None:
        from transformers import RobertaModel

        super().__init__()
        self.base_model = RobertaModel(config, add_pooling_layer=True)
        hidden = config.hidden_size
        self.bin_layer = nn.Linear(hidden, 2)
        self.tri_layer = nn.Linear(hidden, 3)
        self.reg_layer = nn.Linear(hidden, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return the 3-way NLI logits (``tri_layer`` on the pooler output)."""
        out = self.base_model(input_ids=input_ids, attention_mask=attention_mask)
        return self.tri_layer(out.pooler_output)


def read_state_dict(ckpt: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning ``.ckpt`` (or a bare state dict) on the CPU."""
    path = Path(ckpt)
    if not path.is_file():
        raise ConfigurationError(
            f"AlignScore checkpoint not found at {str(path)!r}: download AlignScore-base.ckpt "
            "or AlignScore-large.ckpt (huggingface.co/yzha/AlignScore) at build time and set "
            "ALIGNSCORE_CKPT to its path"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - Lightning pickles hyper-parameters
        logger.warning(
            "%s holds more than tensors; loading it with full unpickling (trusted local file)",
            path,
        )
        data = torch.load(path, map_location="cpu", weights_only=False)
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise ConfigurationError(f"{path} is not an AlignScore checkpoint (no state_dict)")
    return state


def build_model(
    state: dict[str, torch.Tensor], config: Any
) -> tuple[AlignModel, list[str]]:
    """Build the network from a checkpoint state dict; return it and the ignored keys."""
    model = AlignModel(config)
    used: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        name = key[len("model.") :] if key.startswith("model.") else key
        if name.startswith(_IGNORED_PREFIXES) or name.endswith(_IGNORED_SUFFIXES):
            ignored.append(key)
        else:
            used[name] = value
    try:
        result = model.load_state_dict(used, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ConfigurationError(
            f"the AlignScore checkpoint does not fit the RoBERTa config: {exc}. Point "
            "ALIGNSCORE_ROBERTA_DIR at roberta-base for AlignScore-base, roberta-large for "
            "AlignScore-large"
        ) from exc
    expected_buffers = {n for n, _ in model.named_buffers()}
    missing = [k for k in result.missing_keys if k not in expected_buffers]
    if missing or result.unexpected_keys:
        raise ConfigurationError(
            "the AlignScore checkpoint does not match the RoBERTa config "
            f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}): point "
            "ALIGNSCORE_ROBERTA_DIR at roberta-base for AlignScore-base, roberta-large for "
            "AlignScore-large"
        )
    model.eval()
    return model, ignored
