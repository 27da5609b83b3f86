"""The lines between the rings (docs/architecture.md, "Architecture"), kept by tests rather than by habit."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "convcalc"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
CORE = ["errors", "layer", "padding", "spec", "receptive", "periodic", "gridding", "aspp", "design", "checks", "cost",
        "reports", "sizes", "graph/fields", "graph/rules", "graph/costs", "graph/shapes"]


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE).with_suffix(""))


def _imports(path: Path) -> set[str]:
    """Top-level packages a module imports, anywhere in it (function bodies included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_over_500_lines(path):
    assert len(path.read_text().splitlines()) <= 500


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_framework(module):
    assert _imports(PACKAGE / f"{module}.py") & {"typer", "rich", "torch", "numpy"} == set()


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_rich_only_in_render_and_cli_and_typer_only_in_cli(path):
    name = _name(path)
    imported = _imports(path)
    if "typer" in imported:
        assert name.startswith("cli/"), name
    if "rich" in imported:
        assert name.startswith(("cli/", "render/")), name


def test_import_convcalc_loads_no_framework():
    code = ("import sys, convcalc, convcalc.graph, convcalc.reports\n"
            "convcalc.parse_layers, convcalc.receptive_field\n"
            "print(sorted(m for m in ('torch', 'numpy', 'rich', 'typer') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_cited_doc_exists():
    cited = set()
    for path in [*MODULES, *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py"), ROOT / "README.md"]:
        cited |= set(re.findall(r"docs/[\w.-]+\.md", path.read_text()))
        if path != Path(__file__):  # files outside this repository are not cited
            assert not re.search(r"\b(DESIGN|REFERENCES)\.md", path.read_text()), path
    assert cited >= {"docs/architecture.md", "docs/references.md"}
    for doc in cited:
        assert (ROOT / doc).is_file(), doc


def test_every_command_has_one_cli_and_one_render_module():
    from convcalc.cli.typer_app import COMMANDS

    for command in COMMANDS:
        assert (PACKAGE / "cli" / f"{command}.py").is_file(), command
        assert (PACKAGE / "render" / f"{command}.py").is_file(), command


def _module_imports() -> dict[str, set[str]]:
    """Each convcalc module and the convcalc modules it imports, anywhere in it: at the top, inside
    functions and under TYPE_CHECKING (a circle through any of them is still a circle to read)."""
    names = {}
    for path in MODULES:
        dotted = ".".join(("convcalc", *path.relative_to(PACKAGE).with_suffix("").parts))
        names[dotted.removesuffix(".__init__")] = path
    edges: dict[str, set[str]] = {}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rsplit(".", 1)[0]
                target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in names else target for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        edges[name] = {t for t in found if t in names and t != name and not name.startswith(t + ".")}
    return edges


def test_no_import_circles():
    """No module reaches itself through its imports (strongly connected components of one module only)."""
    edges = _module_imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    assert circles == []
