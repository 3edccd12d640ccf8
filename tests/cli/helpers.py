"""What the CLI tests share: running `evalserve` as a user would, and writing input files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from evalserve.cli import main as cli_main

__all__ = ["run_main", "write_jsonl"]


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run `evalserve ARGS` through the console-script entry point; its exit code."""
    monkeypatch.setattr(sys, "argv", ["evalserve", *args])
    try:
        cli_main.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """`rows` as a JSONL file at `path`."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
