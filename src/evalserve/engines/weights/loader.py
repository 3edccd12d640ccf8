"""Load a causal LM and its tokenizer from disk: a Hugging Face directory or a GGUF file.

A GGUF file is de-quantized by transformers (about 20 s for the bundled model); the result is
saved under `DATA_DIR/models/` so later starts load it in well under a second.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalserve.engines.weights.bundled import BUNDLED_MODEL_ID, bundled_gguf_path
from evalserve.errors import ConfigurationError

__all__ = ["ModelSource", "converted_dir", "resolve_model_source", "resolve_dtype", "load_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from, and the id clients see."""

    model_id: str
    path: Path
    gguf: bool


def resolve_model_source(
    model_name: str | None, model_dir: Path, model_id: str | None = None
) -> ModelSource:
    """MODEL_NAME if set; else a model downloaded to MODEL_DIR/MODEL_ID; else the bundled one."""
    if model_name:
        path = Path(model_name).expanduser()
        if not path.exists():
            raise ConfigurationError(
                f"MODEL_NAME={model_name!r} is not a local directory or .gguf file; evalserve "
                "never downloads at run time: fetch it first with `evalserve download`"
            )
        gguf = path.is_file() and path.suffix == ".gguf"
        if path.is_file() and not gguf:
            raise ConfigurationError(f"MODEL_NAME={model_name!r}: a file must be a .gguf")
        return ModelSource(model_id=path.stem if gguf else path.name, path=path, gguf=gguf)
    if model_id:
        downloaded = model_dir / model_id
        if (downloaded / "config.json").exists():
            return ModelSource(model_id=model_id, path=downloaded, gguf=False)
    return ModelSource(model_id=BUNDLED_MODEL_ID, path=bundled_gguf_path(), gguf=True)


def converted_dir(source: ModelSource, cache_root: Path) -> Path:
    """Where `load_model` keeps the converted copy of a GGUF `source` under `cache_root`
    (a new folder whenever the file changes). It may not exist yet."""
    stat = source.path.stat()
    key = f"{source.path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_root / f"{source.path.stem}-{digest}"


def _convert_gguf(source: ModelSource, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s (first start only; cached in %s)", source.path.name, target)
    folder, name = str(source.path.parent), source.path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # The de-quantized weights are plain tensors; transformers only refuses to save them
    # because the model still remembers it came through the GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str, device: str) -> str:
    """`auto`: bfloat16 on CUDA and on CPUs with native bf16 matmul (about 2x faster than
    float32 there, measured on the bundled model), float32 elsewhere."""
    if dtype != "auto":
        return dtype
    if device.startswith("cuda") or _cpu_has_bf16():
        return "bfloat16"
    return "float32"


def load_model(
    source: ModelSource, *, cache_root: Path, device: str, dtype: str = "auto"
) -> tuple[Any, Any]:
    """Return `(model, tokenizer)` ready for inference on `device`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = source.path
    if source.gguf:
        path = converted_dir(source, cache_root)
        if not (path / "config.json").exists():
            cache_root.mkdir(parents=True, exist_ok=True)
            # Replicas sharing DATA_DIR may start together: one converts, the others wait.
            with open(cache_root / ".convert.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not (path / "config.json").exists():
                    _convert_gguf(source, path)
    torch_dtype = getattr(torch, resolve_dtype(dtype, device))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
    model.to(device)
    if torch_dtype != torch.float32:
        _float32_head(model)
    model.eval()
    return model, tokenizer


def _float32_head(model: Any) -> None:
    """Compute the output logits in float32 while the body runs in half precision.

    bfloat16 logits have 8 bits of mantissa: neighbouring candidates tie, greedy decoding then
    depends on tie-breaking and log-probabilities (used for probability-weighted scores) are
    coarse. The head is a small part of the work, so this costs little.
    """
    import torch

    head = model.get_output_embeddings()
    if head is None:
        return
    head.weight = torch.nn.Parameter(head.weight.detach().float(), requires_grad=False)
    if getattr(head, "bias", None) is not None:
        head.bias = torch.nn.Parameter(head.bias.detach().float(), requires_grad=False)
    head.register_forward_pre_hook(lambda _module, args: tuple(a.float() for a in args))
