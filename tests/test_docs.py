"""The documentation site's sources: the API reference names every public name, the gallery's
examples can run on reduced data, and the pages link nothing outside the site at build time."""

from __future__ import annotations

import re
from pathlib import Path

import fastnn

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _api_entries() -> set[str]:
    text = (DOCS / "api.rst").read_text()
    entries = set()
    for block in re.split(r"\.\. autosummary::", text)[1:]:
        for line in block.splitlines()[1:]:
            if line.startswith("   ") and not line.strip().startswith(":"):
                entries.add(line.strip())
            elif line and not line.startswith(" "):
                break
    return entries


def test_the_api_reference_lists_every_public_name():
    entries = _api_entries()
    missing = sorted(set(fastnn.__all__) - entries)
    assert not missing, f"names in fastnn.__all__ missing from docs/api.rst: {missing}"


def test_the_api_reference_lists_every_public_module():
    entries = _api_entries()
    package = ROOT / "fastnn"
    public = {p.stem for p in package.glob("*.py") if not p.name.startswith("_")}
    public |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    missing = sorted(public - entries)
    assert not missing, f"modules missing from docs/api.rst: {missing}"


def test_every_example_has_a_title_and_runs_reduced_in_ci():
    examples = sorted((ROOT / "examples").glob("plot_*.py"))
    assert len(examples) >= 5
    for path in examples:
        text = path.read_text()
        assert re.match(r'"""\n[^\n]+\n=+\n', text), f"{path.name}: sphinx-gallery needs a title docstring"
        trains = "fastnn.train(" in text or "fastnn.sweep(" in text or 'load_dataset("mnist")' in text
        if trains:
            assert "FASTNN_DOCS_QUICK" in text, f"{path.name} trains on MNIST: give it a reduced mode"


def test_every_user_guide_page_is_in_the_table_of_contents():
    index = (DOCS / "index.md").read_text()
    pages = {p.stem for p in (DOCS / "guide").glob("*.md")}
    missing = sorted(p for p in pages if f"guide/{p}" not in index)
    assert not missing, missing


def test_the_readmes_quick_start_is_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", quick, flags=re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    assert commands[0].endswith("fastnn train --backend numba")
    assert commands[1].endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert any(line.strip() == commands[1] for line in ci.splitlines()), "CI must run the README's test command"
