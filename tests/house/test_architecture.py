"""The layout keeps its promises: imports go one way, SQL lives in store modules, and each
table has one store.

Read from the source, not from running code. A module's imports count whether they run or
are for the type checker only (under `if TYPE_CHECKING:`): a type-only import is still a
dependency, and a circle of them is still a circle.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PORTAL = Path(__file__).resolve().parent.parent.parent / "portal"

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


# The one store of every table and view the migrations leave alive (README, "Architecture"):
# only this module names it in SQL; other packages call its functions. A read that needs
# several tables in one round trip reads a view (migrations/019) owned by the store that
# reads it, so a join never spreads a table's SQL into another store.
TABLE_OWNERS = {
    "salons": "salons/store.py",
    "marketplace_users": "salons/marketplace_user_store.py",
    "marketplace_events": "salons/event_store.py",
    "salon_events": "salons/event_store.py",  # view: events with their salon
    "whatsapp_links": "whatsapp/store.py",
    "salon_links": "whatsapp/store.py",  # view: a salon with its link
    "gateway_events_seen": "whatsapp/gateway_event_store.py",
    "phone_confirmations": "whatsapp/confirmation_store.py",
    "circuit_breakers": "whatsapp/breaker_store.py",
    "portal_instances": "whatsapp/instance_store.py",
    "activation_intents": "activation/intent_store.py",
    "activation_intent_salons": "activation/intent_store.py",  # view: intents with their salon
    "activation_checks": "activation/store.py",  # view: a salon with its install's link status
    "webhook_deliveries": "yclients_webhooks/store.py",
    "entity_webhooks_ignored": "yclients_webhooks/entity_webhook_store.py",
    "admin_audit_log": "support/audit_store.py",
    "salon_overview": "support/store.py",  # view: a salon as staff see it
    "rate_limit_counts": "web/rate_limit_store.py",
}

MIGRATIONS = PORTAL.parent / "migrations"
_CREATED = re.compile(r"CREATE (?:UNLOGGED )?(?:TABLE|(?:OR REPLACE )?VIEW) (?:IF NOT EXISTS )?(\w+)", re.I)
_DROPPED = re.compile(r"DROP (?:TABLE|VIEW) (?:IF EXISTS )?(\w+)", re.I)
# A string constant is SQL when it holds a statement's keyword (the project writes them in
# capitals); docstrings are prose, never SQL, and are left out.
_SQL_TEXT = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|FROM|JOIN)\b")


def live_relations() -> set[str]:
    created: set[str] = set()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", path.read_text())
        created |= {name.lower() for name in _CREATED.findall(text)}
        created -= {name.lower() for name in _DROPPED.findall(text)}
    return created


def sql_texts(path: Path) -> list[str]:
    """The module's SQL: its string constants that read as SQL, an f-string's pieces joined
    (what is interpolated is left out), docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    pieces = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            texts.append(" ".join(v.value for v in node.values if isinstance(v, ast.Constant)))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings and id(node) not in pieces):
            texts.append(node.value)
    return [t for t in texts if _SQL_TEXT.search(t)]


def named_in_sql() -> dict[str, set[str]]:
    """Table or view → the modules (relative to portal/) whose SQL names it."""
    relations, found = live_relations(), defaultdict(set)
    for path in PORTAL.rglob("*.py"):
        if path.name == "migrations.py":  # the migration runner's bookkeeping
            continue
        for text in sql_texts(path):
            for name in relations:
                if re.search(rf"\b{name}\b", text):
                    found[name].add(str(path.relative_to(PORTAL)))
    return found


def test_every_live_table_and_view_has_one_owner_store():
    assert set(TABLE_OWNERS) == live_relations()
    assert all(Path(owner).name == "store.py" or owner.endswith("_store.py") for owner in TABLE_OWNERS.values())


def test_a_table_is_named_in_sql_only_by_its_owner():
    found = named_in_sql()
    strangers = sorted(f"{name} in {module}" for name, modules in found.items()
                       for module in modules - {TABLE_OWNERS[name]})
    assert strangers == []
    # Not vacuous: the detection sees every owner name its own table or view.
    assert {name for name, modules in found.items() if TABLE_OWNERS[name] in modules} == set(TABLE_OWNERS)


def test_the_sql_detection_skips_docstrings_and_reads_f_strings(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Salons and whatsapp_links, in prose."""\n'
                      'Q = f"SELECT {COLUMNS} FROM salons WHERE id = $1"\n'
                      'WORD = "salons"\n')
    assert sql_texts(module) == ["SELECT   FROM salons WHERE id = $1"]  # pieces joined by a space


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
