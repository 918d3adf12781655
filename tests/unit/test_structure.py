"""The shape of the code: no import cycles, imports only down or sideways, no grab-bag files.

These read the source (``ast``), never import it, so they see every import: at
module level, inside functions, and under ``TYPE_CHECKING``. A cycle kept alive
only for type hints is still a wall in the wrong place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SOURCE / "purse"
LINES_MAX = 700

# The floors of docs/architecture.md, from the bottom up: a package may import from its
# own floor or below. A domain's HTTP adapters (api, pages) are entry points and may
# import from the floors below entry points.
FLOORS: dict[str, int] = {
    "settings": 1,
    "errors": 1,
    "models": 1,
    "hashchain": 1,
    "crypto": 1,
    "i18n": 1,
    "devices": 1,
    "logs": 1,
    "routing": 1,
    "db": 2,
    "prepared": 2,
    "money": 2,
    "audit": 2,
    "jobs": 2,
    "ledger": 3,
    "identity": 4,
    "notify": 4,
    "funding": 4,
    "operations": 5,
    "web": 5,
    "deps": 5,
    "problems": 5,
    "wallet": 6,
    "merchants": 6,
    "assembly": 7,
    "app": 7,
    "workers": 7,
    "cli": 7,
    "bench": 7,
    "demo": 7,
    "migrate": 7,
    "migrations": 7,
    "server": 7,
    "__init__": 1,
}
ADAPTERS = {"api", "pages"}
ENTRY_FLOOR = 7


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The purse modules ``name`` imports, wherever the import statement is."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from purse.wallet import service" imports the module purse.wallet.service.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("purse") and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = dict(modules())
    known = set(paths)
    return {name: imports_of(name, path, known) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in sorted(graph.get(node, ())):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def floor_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if len(parts) > 2 and parts[2] in ADAPTERS:
        return ENTRY_FLOOR
    return FLOORS[top]


def test_the_graph_sees_the_imports_it_must() -> None:
    """The test can fail: it finds imports made inside functions and from packages."""
    graph = import_graph()
    assert len(graph) > 100
    assert "purse.ledger.service" in graph["purse.wallet.banking"]
    assert "purse.operations.kinds" in graph["purse.operations.service"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_every_package_has_a_floor() -> None:
    tops = {name.split(".")[1] for name, _path in modules() if "." in name}
    assert tops <= set(FLOORS), f"give these a floor in FLOORS: {sorted(tops - set(FLOORS))}"


def test_imports_point_down_or_sideways() -> None:
    upward = [
        f"{module} (floor {floor_of(module)}) imports {target} (floor {floor_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if floor_of(target) > floor_of(module)
    ]
    assert upward == [], "\n".join(upward)


def test_only_adapters_speak_http() -> None:
    """Services, rules and models never import FastAPI or Starlette (STYLE: where logic lives)."""
    http_modules = {"purse.app", "purse.deps", "purse.problems", "purse.routing", "purse.assembly"}
    speaking = []
    for name, path in modules():
        parts = [*name.split("."), "", ""]
        adapter = parts[2] in ADAPTERS
        if adapter or name in http_modules or parts[1] in ("web", "cli", "workers", "bench"):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(n.split(".")[0] in ("fastapi", "starlette") for n in names):
                speaking.append(name)
    assert speaking == [], f"these modules import FastAPI/Starlette: {sorted(set(speaking))}"


@pytest.mark.parametrize(("name", "path"), list(modules()), ids=lambda value: str(value))
def test_no_file_is_too_long(name: str, path: Path) -> None:
    lines = len(path.read_text("utf-8").splitlines())
    assert lines <= LINES_MAX, f"{name} has {lines} lines; split it by use case"
