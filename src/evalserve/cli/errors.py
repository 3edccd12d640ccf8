"""Library errors become one red line and exit code 2 (1 for unexpected failures)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from evalserve.errors import EvalserveError

__all__ = ["run_cli", "err_console"]

err_console = Console(stderr=True)


def run_cli(app: typer.Typer) -> None:
    try:
        app(standalone_mode=False)
    except EvalserveError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
