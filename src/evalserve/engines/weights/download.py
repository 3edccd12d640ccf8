"""Build-time model download: the only code in evalserve that fetches weights.

`download_model` puts a model (and optionally a draft model for speculative decoding) under
`MODEL_DIR/<model-id>`, the layout `engines.loader.resolve_model_source` loads from, using
`huggingface_hub.snapshot_download` or `modelscope.snapshot_download` (optional extra
`evalserve[download]`, imported only here, only when called). It writes a small manifest,
`MODEL_DIR/evalserve-download.json`, recording what was fetched and the
`--speculative-config` an upstream `vllm serve` needs for the draft model. At run time the
server loads from disk only (`local_files_only=True`).
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from evalserve.errors import (
    ConfigurationError,
    EvalserveError,
    InvalidInputError,
    NotFoundError,
)

__all__ = [
    "MANIFEST_NAME",
    "SOURCES",
    "DownloadResult",
    "DownloadedModel",
    "SnapshotFn",
    "download_model",
    "hub_revision",
    "model_path",
    "snapshot_function",
]

log = logging.getLogger(__name__)

Source = Literal["hf", "modelscope"]
SOURCES: tuple[str, ...] = ("hf", "modelscope")
MANIFEST_NAME = "evalserve-download.json"
#: Draft tokens proposed per step in the recorded vLLM `--speculative-config`.
NUM_SPECULATIVE_TOKENS = 5

#: `snapshot(model_id, revision, local_dir) -> path`: fetches one repository into local_dir.
SnapshotFn = Callable[[str, str, Path], str | Path]

_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")
_INSTALL_HINT = "pip install 'evalserve[download]'"


@dataclass(frozen=True)
class DownloadedModel:
    """One fetched repository."""

    id: str
    revision: str
    path: str


@dataclass(frozen=True)
class DownloadResult:
    """What `download_model` fetched and where it recorded it."""

    source: str
    model: DownloadedModel
    draft: DownloadedModel | None
    draft_error: str | None
    manifest: Path

    @property
    def speculative_config(self) -> dict[str, object] | None:
        """vLLM's `--speculative-config` for the draft model (None without one)."""
        if self.draft is None:
            return None
        return {"model": self.draft.path, "num_speculative_tokens": NUM_SPECULATIVE_TOKENS}


def model_path(model_dir: Path, model_id: str) -> Path:
    """`MODEL_DIR/<model-id>` (an `org/name` id keeps its folder), after checking the id."""
    if not _MODEL_ID.match(model_id) or ".." in model_id:
        raise InvalidInputError(
            f"model id {model_id!r} is not a hub id: use `name` or `org/name` "
            "(letters, digits, '-', '_', '.')"
        )
    return model_dir / model_id


def hub_revision(source: str, revision: str | None) -> str:
    """The revision to ask `source` for. ModelScope's default branch is `master`, Hugging
    Face's `main`: `master` (the seed's `MODEL_REVISION` default) means `main` on HF."""
    if not revision:
        return "master" if source == "modelscope" else "main"
    if source == "hf" and revision == "master":
        return "main"
    return revision


def _describe_failure(source: str, model_id: str, revision: str, exc: Exception) -> Exception:
    name = type(exc).__name__
    hub = "huggingface.co" if source == "hf" else "modelscope.cn"
    # huggingface_hub reports an unreachable hub as LocalEntryNotFoundError (no cached copy).
    offline = "LocalEntryNotFound" in name or "Connect" in name or "Timeout" in name
    if offline:
        return ConfigurationError(
            f"could not reach {hub} to download {model_id}: {name}: {_first_line(exc)}. "
            "Downloads need network access at build time: check the connection or proxy "
            "(HF_ENDPOINT for a mirror), or try --source"
        )
    if "RevisionNotFound" in name:
        return NotFoundError(
            f"{model_id} has no revision {revision!r} on {hub}: pass an existing branch, tag "
            "or commit with --revision (MODEL_REVISION)"
        )
    if "NotFound" in name or "NotExist" in name or "GatedRepo" in name:
        return NotFoundError(
            f"{model_id} (revision {revision!r}) was not found on {hub} or needs access: "
            f"check --model-id and --source ({name}: {_first_line(exc)})"
        )
    return ConfigurationError(
        f"could not download {model_id} from {hub}: {name}: {_first_line(exc)}. Downloads "
        "need network access at build time: check the connection or proxy (HF_ENDPOINT for "
        "a mirror), or try --source"
    )


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else "no detail"


def _hub_snapshot_download(hub: str, package: str) -> Callable[..., str | Path]:
    """`package.snapshot_download`, imported now; a ConfigurationError with the install hint
    when the package is missing."""
    try:
        return importlib.import_module(package).snapshot_download
    except ImportError:
        raise ConfigurationError(
            f"downloading from {hub} needs {package}: {_INSTALL_HINT}"
        ) from None


def snapshot_function(source: str) -> SnapshotFn:
    """The hub client's snapshot download for `source`, imported now; a ConfigurationError
    with the install hint when the library is missing."""
    if source == "hf":
        hf_snapshot = _hub_snapshot_download("Hugging Face", "huggingface_hub")

        def fetch_hf(model_id: str, revision: str, local_dir: Path) -> str | Path:
            return hf_snapshot(repo_id=model_id, revision=revision, local_dir=str(local_dir))

        return fetch_hf
    if source == "modelscope":
        ms_snapshot = _hub_snapshot_download("ModelScope", "modelscope")

        def fetch_ms(model_id: str, revision: str, local_dir: Path) -> str | Path:
            try:
                return ms_snapshot(model_id, revision=revision, local_dir=str(local_dir))
            except TypeError as exc:
                if "local_dir" not in str(exc):
                    raise
                raise ConfigurationError(
                    "this modelscope cannot download into a folder (no local_dir): "
                    "pip install -U 'modelscope>=1.18'"
                ) from None

        return fetch_ms
    raise InvalidInputError(f"source {source!r} is not one of {', '.join(SOURCES)}")


def _fetch(snapshot: SnapshotFn, source: str, model_id: str, revision: str,
           target: Path) -> DownloadedModel:
    target.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s@%s from %s into %s", model_id, revision, source, target)
    started = time.perf_counter()
    try:
        snapshot(model_id, revision, target)
    except EvalserveError:
        raise
    except Exception as exc:
        raise _describe_failure(source, model_id, revision, exc) from exc
    log.info("downloaded %s in %.1f s", model_id, time.perf_counter() - started)
    return DownloadedModel(id=model_id, revision=revision, path=str(target.resolve()))


def _write_manifest(path: Path, result: DownloadResult) -> None:
    body = {
        "source": result.source,
        "model": asdict(result.model),
        "draft": asdict(result.draft) if result.draft else None,
        "draft_error": result.draft_error,
        "speculative_config": result.speculative_config,
        "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)


def download_model(
    model_id: str,
    *,
    model_dir: Path,
    revision: str | None = None,
    source: str = "hf",
    draft_model_id: str | None = None,
    draft_revision: str | None = None,
    draft_optional: bool = False,
    snapshot: SnapshotFn | None = None,
) -> DownloadResult:
    """Fetch `model_id` into `model_dir/model_id` (and a draft model next to it).

    Args:
        model_id: hub id, e.g. `Qwen/Qwen2.5-0.5B-Instruct`.
        model_dir: root folder (`MODEL_DIR`).
        revision: branch, tag or commit; `master` maps to `main` on Hugging Face.
        source: `hf` or `modelscope`.
        draft_model_id: optional draft model for speculative decoding (vLLM upstream).
        draft_optional: a failed draft download only logs a warning (recorded in the
            manifest's `draft_error`) instead of raising.
        snapshot: the fetch function; default: the hub client's (`snapshot_function`).

    Raises:
        ConfigurationError: the hub library is missing, or the network is unreachable, or the
            download holds no `config.json` (not a Hugging Face model directory).
        NotFoundError: no such model or revision.
    """
    if source not in SOURCES:
        raise InvalidInputError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    target = model_path(model_dir, model_id)
    draft_target = model_path(model_dir, draft_model_id) if draft_model_id else None
    fetch = snapshot or snapshot_function(source)

    model = _fetch(fetch, source, model_id, hub_revision(source, revision), target)
    if not (target / "config.json").exists():
        raise ConfigurationError(
            f"{model_id} was downloaded to {target} but holds no config.json: evalserve "
            "serves Hugging Face model directories (for a .gguf file set MODEL_NAME to it)"
        )

    draft: DownloadedModel | None = None
    draft_error: str | None = None
    if draft_model_id and draft_target is not None:
        try:
            draft = _fetch(fetch, source, draft_model_id,
                           hub_revision(source, draft_revision), draft_target)
        except (ConfigurationError, NotFoundError) as exc:
            if not draft_optional:
                raise
            draft_error = exc.message
            log.warning("optional draft model %s not downloaded: %s", draft_model_id,
                        exc.message)

    result = DownloadResult(source=source, model=model, draft=draft, draft_error=draft_error,
                            manifest=model_dir / MANIFEST_NAME)
    _write_manifest(result.manifest, result)
    return result
