"""Shared fixtures for the metrics tests: seeded text generators and a tiny AlignScore."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.metrics.metrics_textgen import SENTENCES


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.fixture(scope="session")
def tiny_alignscore(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny random RoBERTa + BPE tokenizer dir and an AlignScore-format ``.ckpt``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaModel, RobertaTokenizerFast

    root = tmp_path_factory.mktemp("alignscore")
    bpe = ByteLevelBPETokenizer()
    corpus = SENTENCES + ["Paris is the capital of France.", "A dog barked loudly at night."]
    bpe.train_from_iterator(
        corpus * 5,
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe.save_model(str(root))
    tokenizer = RobertaTokenizerFast(
        vocab=str(root / "vocab.json"), merges=str(root / "merges.txt"), model_max_length=128
    )
    tokenizer.save_pretrained(root)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.save_pretrained(root)
    torch.manual_seed(0)
    base = RobertaModel(config, add_pooling_layer=True)
    mlm = RobertaForMaskedLM(config).lm_head
    state = {f"base_model.{k}": v for k, v in base.state_dict().items()}
    state.update({f"mlm_head.{k}": v for k, v in mlm.state_dict().items()})
    for name, n_out in (("bin_layer", 2), ("tri_layer", 3), ("reg_layer", 1)):
        layer = torch.nn.Linear(16, n_out)
        state[f"{name}.weight"] = layer.weight.detach().clone() * 5
        state[f"{name}.bias"] = layer.bias.detach().clone()
    # older transformers saved this buffer; real AlignScore checkpoints carry it
    state["base_model.embeddings.position_ids"] = torch.arange(130)[None]
    ckpt = root / "tiny.ckpt"
    torch.save({"state_dict": state, "epoch": 1}, ckpt)
    return ckpt, root
