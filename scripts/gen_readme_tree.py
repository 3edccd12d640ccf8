"""Regenerate the README's package layout (between the `layout` markers) from `src/evalserve/`.

Every module is listed with the summary of its docstring (its first sentence; a package shows
its `__init__.py`'s), every folder without Python files with the files it ships, followed by
the layers of the import-linter contract in `pyproject.toml`. Modules are read with `ast`, never
imported, so this is quick and needs no extras.

Run after adding, moving or re-documenting a module: `.venv/bin/python scripts/gen_readme_tree.py`
(`--check` only reports whether the README is stale; `tests/test_readme.py` runs that check).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "evalserve"
README = ROOT / "README.md"
BEGIN, END = "<!-- layout:begin -->", "<!-- layout:end -->"
SKIP = {"__pycache__"}
# A sentence ends at a full stop followed by a space and a capital, a backquote or a quote
# (not after "e.g." or "i.e.").
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!e\.g\.)(?<!i\.e\.)\s+(?=[A-Z`\"'(])")


def summary(path: Path) -> str:
    """The first sentence of the module's docstring, its wrapped lines joined."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        return "`python -m evalserve`" if path.name == "__main__.py" else "(no docstring)"
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    return _SENTENCE_END.split(paragraph, 1)[0]


def _entries(folder: Path, depth: int) -> list[tuple[str, str]]:
    indent = "  " * depth
    rows: list[tuple[str, str]] = []
    children = sorted(p for p in folder.iterdir() if p.name not in SKIP)
    for path in children:
        if path.is_file() and path.suffix == ".py" and path.name != "__init__.py":
            rows.append((indent + path.name, summary(path)))
    for path in children:
        if not path.is_dir() or path.name in SKIP or path.name.endswith(".egg-info"):
            continue
        init = path / "__init__.py"
        if init.exists():
            rows.append((f"{indent}{path.name}/", summary(init)))
            rows.extend(_entries(path, depth + 1))
        else:
            files = sorted(p.name for p in path.rglob("*") if p.is_file()
                           and not SKIP.intersection(p.parts))
            rows.append((f"{indent}{path.name}/", "data: " + ", ".join(files)))
    return rows


def layers() -> str:
    """The first `layers` contract of `pyproject.toml`, as `a → b | c → ...`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config.get("tool", {}).get("importlinter", {}).get("contracts", [])
    for contract in contracts:
        if contract.get("type") == "layers":
            return " → ".join(layer.replace("evalserve.", "") for layer in contract["layers"])
    return ""


def layout() -> str:
    """The generated section (without its markers)."""
    rows = [("src/evalserve/", summary(PACKAGE / "__init__.py"))]
    rows += _entries(PACKAGE, 1)
    width = max(len(name) for name, _ in rows) + 2
    tree = "\n".join(f"{name:<{width}}{doc}".rstrip() for name, doc in rows)
    text = f"```\n{tree}\n```\n"
    order = layers()
    if order:
        text += (f"\nImports point one way, checked by `make lint` (import-linter contracts in "
                 f"`pyproject.toml`): {order}.\n")
    return text


def render(readme: str) -> str:
    """`readme` with its layout section regenerated."""
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the {BEGIN} ... {END} markers")
    block = f"{BEGIN}\n{layout()}{END}"
    return re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, readme,
                  count=1, flags=re.S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when README.md is stale instead of rewriting it")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    fresh = render(text)
    if args.check:
        if fresh != text:
            print("README.md layout is stale: run .venv/bin/python scripts/gen_readme_tree.py")
            return 1
        return 0
    if fresh != text:
        README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
