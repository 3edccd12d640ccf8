"""`evalserve generate` (stream tokens to the terminal) and `evalserve models`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from evalserve.cli.engine import loaded_engine
from evalserve.cli.options import EngineOpt, ModelOpt
from evalserve.engines.base import GenerationRequest
from evalserve.engines.registry import running
from evalserve.settings import load_settings

__all__ = ["generate", "models"]


def generate(
    prompt: Annotated[str, typer.Argument(help="Prompt; sent as a chat message unless --raw")],
    max_tokens: Annotated[int | None, typer.Option(help="Output budget (MAX_NEW_TOKENS)")] = None,
    temperature: Annotated[float, typer.Option(help="0 is greedy")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible sampling")] = None,
    raw: Annotated[bool, typer.Option(help="Send the prompt as raw text (no template)")] = False,
    engine: EngineOpt = None,
    model: ModelOpt = None,
) -> None:
    """Generate from the configured model, streaming tokens as they come."""
    settings = load_settings(engine=engine, model_name=model)
    console = Console(highlight=False)

    async def run() -> None:
        request = GenerationRequest(
            prompt=prompt if raw else None,
            messages=None if raw else [{"role": "user", "content": prompt}],
            max_tokens=settings.max_new_tokens if max_tokens is None else max_tokens,
            temperature=temperature,
            seed=seed,
        )
        async with loaded_engine(settings, console) as eng:
            async for delta in eng.stream(request):
                console.print(delta.text, end="", soft_wrap=True, markup=False)
            console.print()

    asyncio.run(run())


def models(engine: EngineOpt = None, model: ModelOpt = None) -> None:
    """List the model(s) the configured engine serves."""
    settings = load_settings(engine=engine, model_name=model)

    async def run() -> None:
        async with running(settings) as eng:
            for info in await eng.models():
                typer.echo(info.id)

    asyncio.run(run())
