"""`evalserve download`: fetch a model at build time into `MODEL_DIR/<model-id>`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from evalserve.engines.weights.download import download_model
from evalserve.errors import ConfigurationError
from evalserve.settings import load_settings

__all__ = ["download"]


def download(
    model_id: Annotated[
        str | None, typer.Option("--model-id", help="Hub id, e.g. Qwen/Qwen2.5-0.5B (MODEL_ID)")
    ] = None,
    revision: Annotated[
        str | None,
        typer.Option(help="Branch, tag or commit (MODEL_REVISION; `master` is `main` on HF)"),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="hf | modelscope (MODEL_SOURCE)")
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Root folder for models (MODEL_DIR)")
    ] = None,
    draft_model_id: Annotated[
        str | None,
        typer.Option("--draft-model-id", help="Draft model for speculative decoding (vLLM)"),
    ] = None,
    draft_revision: Annotated[
        str | None, typer.Option("--draft-revision", help="Revision of the draft model")
    ] = None,
    draft_optional: Annotated[
        bool,
        typer.Option("--draft-optional", help="A failed draft download warns instead of failing"),
    ] = False,
) -> None:
    """Download a model (and optionally a draft model) so the server can run offline."""
    settings = load_settings(model_id=model_id, model_revision=revision, model_source=source,
                             model_dir=directory)
    if not settings.model_id:
        raise ConfigurationError("no model to download: pass --model-id or set MODEL_ID")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    with console.status(f"downloading {settings.model_id} from {settings.model_source}..."):
        result = download_model(
            settings.model_id,
            model_dir=settings.model_dir,
            revision=settings.model_revision,
            source=settings.model_source,
            draft_model_id=draft_model_id,
            draft_revision=draft_revision,
            draft_optional=draft_optional,
        )
    console.print(f"[green]model[/] {escape(result.model.id)}@{escape(result.model.revision)} "
                  f"-> {escape(str(result.model.path))}")
    if result.draft is not None:
        console.print(f"[green]draft[/] {escape(result.draft.id)}@"
                      f"{escape(result.draft.revision)} -> {escape(str(result.draft.path))}")
    if result.draft_error:
        console.print(f"[yellow]warning:[/] optional draft model not downloaded: "
                      f"{escape(str(result.draft_error))}")
    console.print(f"manifest: {result.manifest}", markup=False)
