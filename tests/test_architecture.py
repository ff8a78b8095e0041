"""The layout keeps its promises: imports go one way, and SQL lives in store modules.

Read from the source, not from running code. A module's imports count whether they run or
are for the type checker only (under `if TYPE_CHECKING:`): a type-only import is still a
dependency, and a circle of them is still a circle.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PORTAL = Path(__file__).resolve().parent.parent / "portal"

# Low to high: a package may import its own modules and any package on a lower layer.
LAYERS = [
    {"portal"},  # portal/__init__.py: the version only
    {"platform"},
    {"web"},
    {"salons"},
    {"onboarding"},
    {"whatsapp"},
    {"activation", "yclients_webhooks"},
    {"support", "salon_pages"},
    {"sandbox"},
    {"runtime"},
    {"app"},
    {"__main__"},
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(PORTAL.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "portal":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "portal")
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PORTAL.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        edges[name] = {m for m in imports(path) if m in modules and m != name}
    return edges


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "portal"


def test_packages_import_only_their_own_layer_or_lower():
    upward = sorted(
        f"{a} -> {b}" for a, targets in graph().items() for b in targets
        if package(a) != package(b) and LAYER_OF[package(b)] >= LAYER_OF[package(a)]
    )
    assert upward == []


def test_every_package_has_a_layer():
    assert {package(m) for m in graph()} <= set(LAYER_OF)


def test_no_module_import_cycle():
    edges, state, cycles = graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ (\w+ )?SET|DELETE FROM)\b")


def test_sql_lives_in_store_modules_only():
    outside = [
        f"{p.relative_to(PORTAL.parent)}:{n}"
        for p in PORTAL.rglob("*.py")
        if not (p.name == "store.py" or p.name.endswith("_store.py") or p.name == "migrations.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if SQL.search(line) and not line.lstrip().startswith("#")
    ]
    assert outside == []


def test_modules_stay_small_and_the_top_level_holds_packages():
    too_long = [str(p) for p in PORTAL.rglob("*.py") if len(p.read_text().splitlines()) > 400]
    assert too_long == []
    top = sorted(p.name for p in PORTAL.iterdir() if p.is_file() and p.suffix == ".py")
    assert top == ["__init__.py", "__main__.py", "app.py", "runtime.py"]


def test_gateway_adapters_know_only_the_gateway_vocabulary():
    """An adapter (whatsapp/gateways/) speaks HTTP to its gateway and the neutral vocabulary of
    whatsapp/link.py to the portal; it never reaches into linking, the store or the breaker.
    So adding a gateway touches that folder alone."""
    prefix = "portal.whatsapp.gateways"
    allowed_whatsapp = {"portal.whatsapp.link"}
    reaching = sorted(
        f"{a} -> {b}" for a, targets in graph().items() if a.startswith(prefix) for b in targets
        if b.startswith("portal.whatsapp") and not b.startswith(prefix) and b not in allowed_whatsapp
    )
    assert reaching == []
    assert {m for m in graph() if m.startswith(prefix + ".")} >= {
        f"{prefix}.waha", f"{prefix}.evolution", f"{prefix}.simulator"}


# The composition root builds the container and hands it to requests; everything else
# reaches it through a typed accessor (a package's `deps.py`), as a Protocol of what it uses.
COMPOSITION_ROOT = {"runtime.py", "app.py", "__main__.py"}
UNTYPED_REACH = re.compile(r"\bRuntime\b|request\.state\b")


def test_only_the_composition_root_names_the_container_or_the_request_state():
    reaching = [
        f"{p.relative_to(PORTAL.parent)}:{n}"
        for p in PORTAL.rglob("*.py")
        if p.parent != PORTAL or p.name not in COMPOSITION_ROOT
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if UNTYPED_REACH.search(line) and not (p.name == "deps.py" and "request.state" in line)
    ]
    assert reaching == []
