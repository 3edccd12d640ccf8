"""The AlignScore network and its checkpoint loader, on the tiny random RoBERTa checkpoint
that tests/metrics/conftest.py generates (real checkpoints cannot be downloaded here): what
is read, what is ignored, and the messages for missing, empty and mismatched checkpoints.
(Scoring with it: tests/metrics/test_factuality.py.)"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest
import torch

from evalserve.errors import ConfigurationError
from evalserve.metrics._alignscore import AlignModel, build_model, read_state_dict
from evalserve.metrics.factuality import AlignScorer


def _state(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, weights_only=True)["state_dict"]


def _config(roberta: Path):  # noqa: ANN202
    from transformers import RobertaConfig

    return RobertaConfig.from_pretrained(roberta)


def test_a_lightning_checkpoint_gives_its_state_dict(tiny_alignscore) -> None:
    ckpt, _ = tiny_alignscore
    state = read_state_dict(ckpt)
    assert set(state) == set(_state(ckpt))
    assert all(t.device.type == "cpu" for t in state.values())
    assert "tri_layer.weight" in state and "mlm_head.dense.weight" in state


def test_a_bare_state_dict_is_read_as_is(tiny_alignscore, tmp_path: Path) -> None:
    ckpt, _ = tiny_alignscore
    bare = tmp_path / "bare.pt"
    torch.save(_state(ckpt), bare)
    state = read_state_dict(str(bare))
    assert set(state) == set(_state(ckpt))
    assert torch.equal(state["tri_layer.bias"], _state(ckpt)["tri_layer.bias"])


def test_a_checkpoint_with_pickled_hyper_parameters_is_loaded_with_a_warning(
        tiny_alignscore, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ckpt, _ = tiny_alignscore
    lightning = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": _state(ckpt),
                "hyper_parameters": argparse.Namespace(model_name="roberta-base")}, lightning)
    caplog.set_level(logging.WARNING, logger="evalserve.metrics._alignscore")
    state = read_state_dict(lightning)
    assert set(state) == set(_state(ckpt))
    assert "holds more than tensors; loading it with full unpickling" in caplog.text


def test_a_missing_checkpoint_says_where_to_get_one(tmp_path: Path) -> None:
    path = tmp_path / "AlignScore-base.ckpt"
    with pytest.raises(ConfigurationError) as info:
        read_state_dict(path)
    message = info.value.message
    assert message.startswith(f"AlignScore checkpoint not found at {str(path)!r}")
    assert "huggingface.co/yzha/AlignScore" in message and "ALIGNSCORE_CKPT" in message
    with pytest.raises(ConfigurationError, match="not found"):
        read_state_dict(tmp_path)  # a directory is not a checkpoint


@pytest.mark.parametrize("content", [{}, {"state_dict": {}}, [1, 2], {"state_dict": [1]}])
def test_a_file_without_a_state_dict_is_refused(tmp_path: Path, content: object) -> None:
    path = tmp_path / "empty.ckpt"
    torch.save(content, path)
    with pytest.raises(ConfigurationError,
                       match=r"empty\.ckpt is not an AlignScore checkpoint \(no state_dict\)"):
        read_state_dict(path)


def test_build_model_loads_every_weight_and_ignores_the_mlm_head(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    state = _state(ckpt)
    model, ignored = build_model(state, _config(roberta))
    assert isinstance(model, AlignModel) and not model.training
    assert set(ignored) == ({k for k in state if k.startswith("mlm_head.")}
                            | {"base_model.embeddings.position_ids"})
    loaded = model.state_dict()
    for key in set(state) - set(ignored):
        assert torch.equal(loaded[key], state[key]), key


def test_a_model_prefix_is_stripped(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    state = {f"model.{k}": v for k, v in _state(ckpt).items()}
    model, ignored = build_model(state, _config(roberta))
    assert all(k.startswith("model.") for k in ignored) and "model.mlm_head.bias" in ignored
    assert torch.equal(model.tri_layer.weight, state["model.tri_layer.weight"])


def test_forward_gives_the_three_nli_logits_of_the_pooler_output(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    model, _ = build_model(_state(ckpt), _config(roberta))
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        logits = model(ids, mask)
        pooled = model.base_model(input_ids=ids, attention_mask=mask).pooler_output
    assert logits.shape == (2, 3)
    assert torch.allclose(logits, model.tri_layer(pooled))


def test_a_checkpoint_of_another_size_says_which_roberta_to_use(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    config = _config(roberta)
    config.hidden_size, config.intermediate_size = 32, 64
    with pytest.raises(ConfigurationError) as info:
        build_model(_state(ckpt), config)
    message = info.value.message
    assert message.startswith("the AlignScore checkpoint does not fit the RoBERTa config")
    assert "ALIGNSCORE_ROBERTA_DIR at roberta-base for AlignScore-base" in message


def test_unexpected_keys_are_refused_naming_them(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    state = {**_state(ckpt), "extra_head.weight": torch.zeros(2, 16)}
    with pytest.raises(ConfigurationError,
                       match=r"does not match the RoBERTa config \(missing \[\], "
                             r"unexpected \['extra_head.weight'\]\)"):
        build_model(state, _config(roberta))


def test_missing_keys_are_refused_naming_them(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    state = _state(ckpt)
    del state["reg_layer.bias"]
    with pytest.raises(ConfigurationError, match=r"missing \['reg_layer.bias'\]"):
        build_model(state, _config(roberta))


def test_checkpoint_that_does_not_fit_the_config(tiny_alignscore, tmp_path) -> None:
    ckpt, roberta = tiny_alignscore
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    del state["tri_layer.weight"]
    broken = tmp_path / "broken.ckpt"
    torch.save({"state_dict": state}, broken)
    with pytest.raises(ConfigurationError, match="does not match"):
        AlignScorer(broken, roberta, device="cpu")
