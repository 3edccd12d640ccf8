"""A Dockerfile read into its instructions, and the Makefile's install pins, for the checks."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Instruction", "MakefilePins", "env_names", "makefile_pins", "parse_dockerfile"]


@dataclass(frozen=True)
class Instruction:
    """One instruction: `RUN`, and its arguments with continuation lines joined."""

    keyword: str
    args: str


def parse_dockerfile(path: Path) -> list[Instruction]:
    """The instructions of `path`, comments and blank lines dropped, `\\` lines joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def env_names(instructions: list[Instruction]) -> set[str]:
    """Variables set by `ENV NAME=value ...` instructions."""
    names = set()
    for ins in instructions:
        if ins.keyword == "ENV":
            names |= {word.split("=", 1)[0] for word in shlex.split(ins.args) if "=" in word}
    return names


@dataclass(frozen=True)
class MakefilePins:
    """How the Makefile installs: the torch pin, the constraints file, the `--no-deps` wheels."""

    torch: str
    constraints: str
    no_deps: frozenset[str]


def makefile_pins(path: Path) -> MakefilePins:
    text = path.read_text(encoding="utf-8")
    torch = re.search(r"pip\S*\s+install[^\n]*\b(torch==[\w.+]+)", text.replace("$(PIP)", "pip"))
    constraints = re.search(r"install[^\n]*\s-c\s+(\S+)", text)
    no_deps = re.search(r"--no-deps\s+([^\n]+)", text)
    if not (torch and constraints and no_deps):
        raise ValueError(f"{path}: no torch pin, `-c` constraints or `--no-deps` install found")
    return MakefilePins(torch.group(1), constraints.group(1),
                        frozenset(w for w in no_deps.group(1).split() if "==" in w))
