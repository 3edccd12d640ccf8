"""`evalserve calibrate DATA`: human targets for the loss (seed 002's `calibrateTargets`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from evalserve.cli.options import EngineOpt, ModelOpt
from evalserve.judge.factuality import local_service
from evalserve.settings import load_settings

__all__ = ["calibrate"]


def calibrate(
    data: Annotated[Path, typer.Argument(help="Training data: JSONL / JSON / CSV with original "
                                              "and human columns")],
    save_to: Annotated[Path, typer.Option(help="Where to write the targets JSON")] = Path(
        "targets.json"),
    subset: Annotated[float, typer.Option(help="Fraction (0, 1] of the rows to use")] = 0.5,
    chunk_size: Annotated[int, typer.Option(
        help="Items measured per step; the progress bar moves after each step")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the subset sampling")] = 0,
    lang: Annotated[str, typer.Option(help="Language of the texts, for readability")] = "en",
    engine: EngineOpt = None,
    model: ModelOpt = None,
) -> None:
    """Measure relevance, factuality, FKGL, SMOG and Dale-Chall of the human texts and save
    their mean and std as the loss targets.

    Factuality is AlignScore when ALIGNSCORE_CKPT is set, else an LLM judge on the configured
    model (loaded for the purpose).
    """
    settings = load_settings(engine=engine, model_name=model)
    console = Console(highlight=False)
    progress = Progress(
        TextColumn("calibrating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task("calibrate", total=None)

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    async def run():
        async with local_service(settings) as service:
            return await service.calibrate(
                data, save_to=save_to, subset=subset, chunk_size=chunk_size, progress=advance,
                seed=seed, lang=lang,
            )

    with progress:
        targets = asyncio.run(run())
    table = Table(title=f"Targets from {targets.n} human texts")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("std", justify="right")
    for name, entry in targets.to_dict().items():
        if isinstance(entry, dict) and "mean" in entry:
            table.add_row(name, f"{entry['mean']:.4f}", f"{entry['std']:.4f}")
    console.print(table)
    method = targets.meta.get("factuality_method")
    console.print(f"factuality by {method}; targets written to {save_to}")
