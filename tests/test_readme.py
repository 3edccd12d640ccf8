"""The README's package layout is generated from `src/evalserve/` and must not go stale."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, load_script


def test_readme_layout_lists_every_module_of_the_package() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert load_script("gen_readme_tree").render(readme) == readme, (
        "README.md's layout section is stale: run .venv/bin/python scripts/gen_readme_tree.py")


def test_layout_summary_is_the_docstrings_first_sentence(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Read rows, e.g. `CSV`, JSONL\n(or JSON). More detail.\n\nBody."""\n')
    assert load_script("gen_readme_tree").summary(module) == (
        "Read rows, e.g. `CSV`, JSONL (or JSON).")
