"""Library errors become one red line and exit code 2 (1 for unexpected failures)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text

from evalserve.errors import EvalserveError

__all__ = ["run_cli", "err_console"]

#: Messages are printed as written (no markup: `pip install 'evalserve[download]'` keeps its
#: brackets) and never folded, so a long path or hint can be copied from a log.
err_console = Console(stderr=True, soft_wrap=True, highlight=False)

_ABORTED = 130


def run_cli(app: typer.Typer) -> None:
    """Run `app` as the `evalserve` command: exit 2 with one red line for a library error or a
    usage error, 130 for Ctrl-C, the code of `typer.Exit`; other exceptions propagate."""
    try:
        code = app(standalone_mode=False)
    except EvalserveError as exc:
        err_console.print(Text.assemble(("error:", "bold red"), " ", exc.message))
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        code = _ABORTED
    except typer.TyperException as exc:  # typer's own click: usage errors, no command given
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", 2))
    # without standalone mode typer returns, rather than raises, the code of an Exit or Abort
    if code == _ABORTED:
        err_console.print("aborted")
    if isinstance(code, int) and code:
        sys.exit(code)
