"""The package's shape: small modules, and imports that flow one way (no cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fastnn"
MAX_LINES = 450  # "about 400": a module past this is doing more than one job


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports_at_load(name: str, path: Path, modules: dict) -> set[str]:
    """The fastnn modules ``name`` imports when it is loaded (top-level statements, not functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        found |= {t for t in targets if t in modules and t != name}
    return found


def test_no_module_is_much_over_400_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_no_import_cycle_inside_the_package():
    modules = _modules()
    graph = {name: _imports_at_load(name, path, modules) for name, path in modules.items()}
    # A module's package __init__ runs first; importing the package itself from a submodule is not a cycle.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert "fastnn.plots" not in graph["fastnn.predict"]  # prediction is pure; plotting sits on top


def test_the_pixel_rule_has_one_home():
    """784 and 28 are named in fastnn.pixels only; everyone else imports them."""
    offenders = []
    for name, path in _modules().items():
        if name == "fastnn.pixels":
            continue
        offenders.extend(
            f"{name}: {ast.unparse(node)}"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value in (784, 28)
        )
    assert not offenders, offenders


def test_the_layout_page_names_every_module_and_only_real_ones():
    """The user guide's layout page (docs/guide/layout.md, which the README links) describes every module."""
    page = (PACKAGE.parent / "docs" / "guide" / "layout.md").read_text()
    block = page.split("```text", 1)[1].split("```", 1)[0]
    import re

    named = set(re.findall(r"([A-Za-z_]\w*\.py)", block))
    real = {path.name for path in PACKAGE.rglob("*.py")}
    assert named - real - {"compare.py"} == set()  # benchmarks/compare.py is outside the package
    assert real - named == set(), f"modules missing from the layout page: {real - named}"
    for folder in ("data/", "backends/", "cli/", "serve/"):
        assert folder in block
