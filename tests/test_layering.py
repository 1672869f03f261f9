"""The import graph of src/tether: arrows point down the data flow, and nothing loops.

Reads every module with ``ast`` (module-level and function-level imports alike;
``if TYPE_CHECKING:`` blocks are annotations, not imports, and are skipped).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Stage of each top-level part of tether: a module may import its own stage or lower.
RANK = {
    "errors": 0,
    "constants": 0,
    "tolerances": 0,
    "judging": 0,
    "models": 1,
    "inference": 2,
    "bundles": 2,
    "parity": 3,
    "beam": 4,
    "explore": 4,
    "demo": 4,
    "hub": 4,
    "optimization": 4,
    "face": 5,  # tether.Model: runs models through the fast path (optimization)
    "cli": 5,
    "__main__": 6,  # python -m tether: the entry point
    "": 6,  # tether/__init__.py, the public face, re-exports from everything
}
#: Same-stage packages that may import each other (the runner uses bundles' atomic
#: writes); any other sideways arrow between packages is a layering error.
SIDEWAYS = {("inference", "bundles")}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "tether").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
        for body in stmt.body
        for node in ast.walk(body)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + [base] * bool(base))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _tether_target(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


EDGES = {
    module: {
        target
        for name in _imports(module, path)
        if (target := _tether_target(name)) and target != module
    }
    for module, path in MODULES.items()
}
RAW_IMPORTS = {module: _imports(module, path) for module, path in MODULES.items()}


def test_models_never_import_bundles():
    bad = [
        (m, t)
        for m, ts in EDGES.items()
        for t in ts
        if _part(m) == "models" and _part(t) == "bundles"
    ]
    assert not bad


def test_no_library_module_imports_the_cli():
    bad = [
        (m, t)
        for m, ts in EDGES.items()
        for t in ts
        if _part(t) == "cli" and _part(m) not in ("cli", "__main__")
    ]
    assert not bad


def test_apache_beam_is_imported_only_in_tether_beam():
    bad = [
        m
        for m, names in RAW_IMPORTS.items()
        if any(n == "apache_beam" or n.startswith("apache_beam.") for n in names)
        and _part(m) != "beam"
    ]
    assert not bad


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    part = _part(module)
    up = []
    for target in EDGES[module]:
        other = _part(target)
        if other == part or module == "tether" or target == "tether":
            continue
        if RANK[other] > RANK[part] or (
            0 < RANK[other] == RANK[part] and (part, other) not in SIDEWAYS
        ):
            up.append(target)
    assert not up, f"{module} imports {up}: a layer at or above its own"


def test_no_import_cycles():
    """Tarjan's strongly connected components over module edges (a package's
    __init__ importing its own children is a re-export, not a loop)."""
    edges = {
        m: {t for t in ts if not (t.startswith(m + ".") and MODULES[m].name == "__init__.py")}
        for m, ts in EDGES.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles


def test_the_checker_sees_real_edges():
    """Guards the tests above against passing because the walker found nothing."""
    assert "tether.models.manifest" in EDGES["tether.models.loading"]
    assert "tether.bundles.atomic" in EDGES["tether.inference.runner"]
    assert any(n.startswith("apache_beam") for n in RAW_IMPORTS["tether.beam.pipeline"])
