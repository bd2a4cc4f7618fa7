"""The environment tool's layers: a small core (running tools, the config, the report, the Manager
class) that the managers build on; the doctor and the command line on top; no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import TOOL

# The core every manager may use; it imports nothing above it.
CORE = {"shell", "running", "config", "failures", "report", "manager", "probe", "pins",
        "discovery", "conda_records"}  # fmt: skip
ABOVE = {"cli", "doctor", "copying", "kernel", "__main__"}


def module_name(path: Path) -> str:
    """`managers.uv` for managers/uv.py, `config` for config.py."""
    return ".".join(path.relative_to(TOOL).with_suffix("").parts)


def imports_of(path: Path) -> set[str]:
    """The tool's modules that `path` imports (relative imports, anywhere in the file: inside
    functions and under TYPE_CHECKING too)."""
    package = module_name(path).split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package[: len(package) - node.level + 1]
        if node.module:
            found.add(".".join([*base, node.module]))
        else:  # `from . import doctor, gitinit`
            found |= {".".join([*base, alias.name]) for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in TOOL.rglob("*.py") if "__pycache__" not in p.parts}
    return {name: imports_of(path) & modules.keys() for name, path in modules.items()}


def test_the_tool_has_no_import_cycles() -> None:
    edges = graph()
    assert "managers.uv" in edges and "running" in edges["managers.uv"]  # the parse sees imports
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        for nxt in sorted(edges[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for node in sorted(edges):
        visit(node, [])


def test_managers_build_on_the_core_only() -> None:
    """Managers never import the doctor or the command line; the core imports no manager and
    nothing above it; the hybrid base class lives with the managers."""
    edges = graph()
    assert "managers._hybrid" in edges and "hybrid" not in edges
    for name, deps in edges.items():
        if name.startswith("managers."):
            assert not deps & ABOVE, f"{name} imports {deps & ABOVE}"
        if name in CORE:
            above = {d for d in deps if d in ABOVE or d.startswith("managers")}
            assert not above, f"the core module {name} imports {above}"
