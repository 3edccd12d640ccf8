"""Options shared by several commands (each overrides the matching environment variable)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["EngineOpt", "ModelOpt"]

EngineOpt = Annotated[
    str | None, typer.Option("--engine", help="transformers | openai | vllm (ENGINE)")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Local model directory or .gguf file (MODEL_NAME)"),
]
