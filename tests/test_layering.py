"""The middle's lines, checked on the source: what reads a run back never reaches the
training code, and the core names no built-in component."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "core"


def core_imports(module: str) -> set[str]:
    """The letras.core modules ``module`` imports, at the top or inside functions (but not
    under ``if TYPE_CHECKING:``, which only type checkers run)."""
    tree = ast.parse((CORE / f"{module}.py").read_text("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return {m for m in found if (CORE / f"{m}.py").exists()}


def reachable(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(core_imports(current))
    return seen


@pytest.mark.parametrize("module", ["trained", "word_commands", "label_commands", "scoring"])
def test_reading_a_run_back_imports_nothing_of_training(module):
    assert not reachable(module) & {"training", "distributed", "pipeline"}, sorted(reachable(module))


def test_only_the_plugin_host_knows_the_built_in_plugins():
    """Built-ins are loaded by core/plugins.py like any plugin; no other core module imports
    or names one of their modules."""
    for path in CORE.glob("*.py"):
        if path.name == "plugins.py":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []
            assert not any(n.startswith("letras.plugins.") for n in names), (path.name, names)
