"""The house's rules, checked on the code's imports (lazy ones inside functions included):

* every room sits on a layer (``LAYERS``); a module imports only from its own layer or below;
* rooms import each other without circles, and so do modules;
* a room is entered through its package: no import reaches into another package's private module;
* the root of ``lrsearch/`` holds at most five modules (module lengths: ``test_imports``, ``test_studies``).

An import that breaks a rule on purpose is an exception written in ``docs/architecture.md``'s table
of exceptions, with its reason; the table is read here, so the page and the code cannot drift.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lrsearch"
PAGE = ROOT / "docs" / "architecture.md"
# room -> layer (L0 pure .. L4 edges); a room is lrsearch's first-level package or root module
LAYERS = {
    "_checks": 0, "_plateau": 0, "schedules": 0, "lossmodel": 0,
    "optim": 1, "training": 1, "rangetest": 1, "population": 1,
    "search": 2, "pruners": 2,
    "reports": 3, "plots": 3,
    "cli": 4, "integrations": 4, "__init__": 4, "__main__": 4,
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _room(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _target(name: str) -> str | None:
    """The lrsearch module an import name lands in (the longest known prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def imports(module: str) -> set[str]:
    """The lrsearch modules ``module`` imports, anywhere in its body (not under TYPE_CHECKING)."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if _is_package(module) else module.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            if name.split(".")[0] == "lrsearch":
                target = _target(name)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {m: imports(m) for m in MODULES}


def exceptions() -> set[tuple[str, str]]:
    """``(importer, imported)`` pairs from the page's table of exceptions (rows ``| `a` | `b` | why |``)."""
    text = PAGE.read_text()
    table = text.split("## Exceptions", 1)[1]
    return {(a, b) for a, b in re.findall(r"^\|\s*`(lrsearch[\w.]*)`\s*\|\s*`(lrsearch[\w.]*)`\s*\|", table, re.M)}


EXCEPTIONS = exceptions()


def _allowed(a: str, b: str) -> bool:
    return (a, b) in EXCEPTIONS


def test_every_room_has_a_layer() -> None:
    assert {_room(m) for m in MODULES} <= set(LAYERS), sorted({_room(m) for m in MODULES} - set(LAYERS))


def test_no_import_runs_up_a_layer() -> None:
    up = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                if LAYERS[_room(b)] > LAYERS[_room(a)] and not _allowed(a, b))
    assert not up


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_circles() -> None:
    graph = {a: {b for b in targets if not _allowed(a, b)} for a, targets in GRAPH.items()}
    assert _cycles(graph) == []


def test_no_room_circles() -> None:
    rooms: dict[str, set[str]] = {}
    for a, targets in GRAPH.items():
        for b in targets:
            if _room(a) != _room(b) and not _allowed(a, b):
                rooms.setdefault(_room(a), set()).add(_room(b))
    assert _cycles(rooms) == []


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_rooms_are_entered_through_their_package() -> None:
    reach = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                   if b.rpartition(".")[2].startswith("_") and not _inside(a, b.rpartition(".")[0])
                   and b.rpartition(".")[0] != "lrsearch" and not _allowed(a, b))
    assert not reach


def test_the_root_holds_at_most_five_modules() -> None:
    assert len([p for p in PACKAGE.glob("*.py")]) <= 5


def test_every_exception_on_the_page_is_a_real_import() -> None:
    assert EXCEPTIONS and all(b in GRAPH.get(a, ()) for a, b in EXCEPTIONS), sorted(
        (a, b) for a, b in EXCEPTIONS if b not in GRAPH.get(a, ()))


def test_the_checker_sees_lazy_imports_and_skips_type_checking_ones() -> None:
    # the rules are only as good as the import reader: it must see imports inside functions
    assert "lrsearch.training" in GRAPH["lrsearch.schedules._spec"]  # Schedule.build's lazy import
    assert "lrsearch.reports" in GRAPH["lrsearch.search._result"]  # SearchResult.plot_history's
    assert "lrsearch.search" in GRAPH["lrsearch.reports._dashboard"]
    assert "lrsearch.search._result" not in GRAPH["lrsearch.search._recorder"]  # under TYPE_CHECKING only
